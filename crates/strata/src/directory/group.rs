//! A composite's group directory. The parent of a composite (a process whose children are
//! [`Process`](crate::process::Process) objects) holds it; each child is told its address
//! in the environment when it starts ([`GROUP_VARIABLE`]) and reaches it over its private
//! link to the parent, where it is granted from the start. No configuration.
//!
//! A process that is no child of a composite is a group of its own: its group directory
//! is local (and becomes its children's when it starts some). A child that starts
//! children of its own holds a group directory for them, while it belongs to its parent's.

use std::sync::OnceLock;

use super::name::Scope;
use super::shared::SharedDirectory;
use crate::Address;

/// The environment variable that gives a child its parent's group directory.
pub(crate) const GROUP_VARIABLE: &str = "STRATA_GROUP_DIRECTORY";

/// This process's own group directory (the one its children join), made on first use.
pub(crate) fn local() -> Address {
    static LOCAL: OnceLock<Address> = OnceLock::new();
    *LOCAL.get_or_init(|| crate::object::create_root(SharedDirectory::new(Scope::Group, None)))
}

/// The group directory this process belongs to: its parent's when it is a child of a
/// composite (read from the environment once), else none (it is its own group).
pub(crate) fn inherited() -> Option<Address> {
    static INHERITED: OnceLock<Option<Address>> = OnceLock::new();
    *INHERITED.get_or_init(|| {
        // The link the environment names, checked before the program starts (so this
        // holds however early the directory is first used).
        if !matches!(
            crate::process::link::inherited(),
            crate::process::link::Inherited::Link { .. }
        ) {
            return None;
        }
        let text = std::env::var(GROUP_VARIABLE).ok()?;
        let parsed = decode(&text);
        if parsed.is_none() {
            tracing::warn!(target: "strata::directory", variable = GROUP_VARIABLE, value = %text, "not a group directory address: this process is a group of its own");
        }
        parsed
    })
}

/// `address` as the environment carries it.
pub(crate) fn encode(address: Address) -> String {
    format!("{:x}:{:x}", address.node(), address.object())
}

fn decode(text: &str) -> Option<Address> {
    let (node, object) = text.split_once(':')?;
    let node = u64::from_str_radix(node, 16).ok()?;
    let object = u64::from_str_radix(object, 16).ok()?;
    (node != 0 && node != crate::address::local_node()).then(|| Address::from_parts(node, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_survives_the_environment_and_nonsense_is_refused() {
        let a = Address::from_parts(0xfeed_beef_0000_0001, 0x42);
        assert_eq!(decode(&encode(a)), Some(a));
        for bad in ["", "12", "x:1", "1:y", "0:5", "1:2:3"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        let own = Address::from_parts(crate::address::local_node(), 1);
        assert_eq!(
            decode(&encode(own)),
            None,
            "this process's own node is no parent"
        );
    }
}
