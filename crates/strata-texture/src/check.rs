//! The check of a texture answer, fast enough for the load client: one pass over the
//! bytes, no number converted.

/// Checks that `body` is a JSON table of numbers with the dimensions `path` asked for
/// (`x` columns, `y` rows).
///
/// A single pass over the bytes that checks the JSON grammar of the table and of every
/// number without converting any of them (converting is most of what a JSON parser would
/// spend here, and the load client must cost little).
pub fn check_table(path: &str, body: &[u8]) -> Result<(), String> {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut x = None;
    let mut y = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "x" => x = v.parse::<usize>().ok(),
            "y" => y = v.parse::<usize>().ok(),
            _ => {}
        }
    }
    let (Some(x), Some(y)) = (x, y) else {
        return Err(format!("`{path}` does not ask for x and y"));
    };
    let mut s = Scan { b: body, at: 0 };
    s.expect(b'[', "a table (an array of rows)")?;
    let mut rows = 0;
    if !s.close(b']') {
        loop {
            s.expect(b'[', "a row (an array of numbers)")?;
            let mut columns = 0;
            if !s.close(b']') {
                loop {
                    s.number()?;
                    columns += 1;
                    if s.close(b']') {
                        break;
                    }
                    s.expect(b',', "`,` or `]` after a number")?;
                }
            }
            if columns != x {
                return Err(format!("row {rows} has {columns} columns, asked for {x}"));
            }
            rows += 1;
            if s.close(b']') {
                break;
            }
            s.expect(b',', "`,` or `]` after a row")?;
        }
    }
    s.skip_space();
    if s.at != body.len() {
        return Err(format!("trailing characters at byte {}", s.at));
    }
    if rows != y {
        return Err(format!("{rows} rows, asked for {y}"));
    }
    Ok(())
}

/// A cursor over JSON bytes.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn skip_space(&mut self) {
        let mut i = self.at;
        while i < self.b.len() && matches!(self.b[i], b' ' | b'\n' | b'\r' | b'\t') {
            i += 1;
        }
        self.at = i;
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        self.skip_space();
        if self.b.get(self.at) == Some(&c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {what} at byte {}", self.at))
        }
    }

    /// Consumes `c` (after white space) if it is next.
    fn close(&mut self, c: u8) -> bool {
        self.skip_space();
        let found = self.b.get(self.at) == Some(&c);
        self.at += usize::from(found);
        found
    }

    fn digits(&mut self) -> usize {
        // A local index keeps the loop in registers.
        let from = self.at;
        let mut i = from;
        // Eight bytes at a time while they are all digits (tables are mostly digits).
        while let Some(chunk) = self.b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            // Every byte is 0x30..=0x39: high nibble 3, and adding 6 does not carry out.
            let high = 0xF0F0_F0F0_F0F0_F0F0u64;
            let threes = 0x3030_3030_3030_3030u64;
            let sixes = 0x0606_0606_0606_0606u64;
            if w & high != threes || (w.wrapping_add(sixes)) & high != threes {
                break;
            }
            i += 8;
        }
        while i < self.b.len() && self.b[i].wrapping_sub(b'0') < 10 {
            i += 1;
        }
        self.at = i;
        i - from
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), String> {
        self.skip_space();
        let from = self.at;
        let bad = |at: usize| Err(format!("not a number at byte {at}"));
        self.at += usize::from(self.b.get(self.at) == Some(&b'-'));
        match self.b.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return bad(from),
        }
        if self.b.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return bad(from);
            }
        }
        if matches!(self.b.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            self.at += usize::from(matches!(self.b.get(self.at), Some(b'+' | b'-')));
            if self.digits() == 0 {
                return bad(from);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_checked_against_the_request() {
        let path = "/Xy?x=2&y=3";
        assert!(check_table(path, b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]]").is_ok());
        assert!(check_table(path, b" [ [-0, 2e-3] ,[1.5E+7,10],\n[0.5,-12.25] ] ").is_ok());
        let long = b"[[0.12345678901234567,1234567890123456789],[0.5,0.5],[0.5,0.5]]";
        assert!(check_table(path, long).is_ok());
        let bad = b"[[0.12345678:01234567,1234567890123456789],[0.5,0.5],[0.5,0.5]]";
        assert!(check_table(path, bad).is_err());
        assert!(check_table("/Xy?x=0&y=0", b"[]").is_ok());
        assert!(check_table("/Xy?x=0&y=2", b"[[],[]]").is_ok());
        for (body, says) in [
            (&b"[[0.1,0.2],[0.3,0.4]]"[..], "2 rows"),
            (b"[[0.1,0.2],[0.3],[0.5,0.6]]", "row 1 has 1"),
            (
                b"[[0.1,\"a\"],[0.3,0.4],[0.5,0.6]]",
                "not a number at byte 6",
            ),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]] x", "trailing"),
            (b"{}", "a table"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6]", "after a row"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,01]]", "after a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,1.]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,1e]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,-]]", "not a number"),
            (b"[[0.1,0.2],[0.3,0.4],[0.5,0.6],]", "a row"),
        ] {
            let e = check_table(path, body).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        assert!(check_table("/Xy?x=2", b"[]")
            .unwrap_err()
            .contains("x and y"));
    }
}
