//! Recipes: how a pool makes its members.

use super::Object;

/// Spools make workers, load runs make clients, and the supervisor, executor and pipeline
/// stages make theirs: all of them take a [`Recipe`], so "what to run" is written once and
/// "how many, and what happens when one ends" is the pool's business. A recipe is usually
/// a closure returning something to create (`|| Thread::new(work)`); a
/// [`Process`](crate::process::Process) is a recipe that makes copies of itself, which is
/// what makes "threads or processes" a one-argument change.
///
/// A recipe may take an input (`Recipe<In>`): what the pool tells each member it makes,
/// such as a load client's share of the run. A closure `FnMut() -> O` is a `Recipe<()>`;
/// a module whose pools pass an input implements `Recipe<ItsInput>` for
/// `FnMut(ItsInput) -> O` beside that input's type.
pub trait Recipe<In = ()>: Send + 'static {
    /// What the recipe makes.
    type Member: Object;
    /// Makes one member, given the pool's input for it.
    fn make(&mut self, input: In) -> Self::Member;
}

impl<F, O> Recipe for F
where
    F: FnMut() -> O + Send + 'static,
    O: Object,
{
    type Member = O;
    fn make(&mut self, (): ()) -> O {
        self()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Thread, ThreadContext};

    #[test]
    fn a_closure_is_a_recipe_and_each_make_is_a_new_object() {
        let mut made = 0;
        let mut recipe = move || {
            made += 1;
            let n = made;
            Thread::new(move |_cx: &mut ThreadContext| n)
        };
        let mut cx = ThreadContext::attach();
        let a = cx.create(recipe.make(()));
        let b = cx.create(recipe.make(()));
        assert_eq!(cx.wait_for(a).downcast::<i32>().unwrap(), 1);
        assert_eq!(cx.wait_for(b).downcast::<i32>().unwrap(), 2);
    }
}
