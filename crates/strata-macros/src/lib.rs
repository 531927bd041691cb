//! Macros for strata: `#[derive(Message)]` and `#[machine]`.
//!
//! Use them through the `strata` crate (`strata::Message`, `strata::machine`), which
//! documents them; the generated code names only `::strata` paths.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Data, DeriveInput, Expr, FnArg, ImplItem, ItemImpl, Lit, Meta, Pat,
    ReturnType, Token,
};

/// Derives `strata::message::Message`.
///
/// Attributes: `#[message(name = "portable.Name")]` sets the portable type name (default:
/// the type's identifier); `#[message(fault)]` makes the type a member of the fault family
/// (it must implement `Display`).
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive_message_impl(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn derive_message_impl(input: DeriveInput) -> syn::Result<Tokens> {
    let mut name = input.ident.to_string();
    let mut fault = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("message")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(meta.error("a message name cannot be empty"));
                }
                name = lit.value();
                Ok(())
            } else if meta.path.is_ident("fault") {
                fault = true;
                Ok(())
            } else {
                Err(meta.error("expected `name = \"...\"` or `fault`"))
            }
        })?;
    }
    if let Data::Union(u) = &input.data {
        return Err(syn::Error::new(
            u.union_token.span,
            "unions cannot be messages",
        ));
    }
    let ident = &input.ident;
    let mut generics = input.generics.clone();
    let type_params: Vec<_> = generics.type_params().map(|p| p.ident.clone()).collect();
    {
        let wc = generics.make_where_clause();
        for p in &type_params {
            wc.predicates
                .push(syn::parse_quote!(#p: ::strata::message::Message));
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    let type_name = if type_params.is_empty() {
        quote!(#name)
    } else {
        quote!(::strata::message::cached_name::<Self>(|| {
            let parts: ::std::vec::Vec<&str> =
                ::std::vec![#(<#type_params as ::strata::message::Message>::type_name()),*];
            ::std::format!("{}<{}>", #name, parts.join(","))
        }))
    };
    let as_fault = fault.then(|| {
        quote! {
            fn as_fault(&self) -> ::std::option::Option<&dyn ::strata::message::Fault> {
                ::std::option::Option::Some(self)
            }
        }
    });
    let fault_impl = fault.then(|| {
        quote! { impl #impl_g ::strata::message::Fault for #ident #ty_g #where_c {} }
    });
    // Non-generic types register themselves, and the containers most often built from
    // them, at link time: a process can then decode them without naming them first.
    let submit = (input.generics.params.is_empty()).then(|| {
        quote! {
            ::strata::__private::inventory::submit! {
                ::strata::message::Registration::new::<#ident>()
            }
            ::strata::__private::inventory::submit! {
                ::strata::message::Registration::new::<::std::vec::Vec<#ident>>()
            }
            ::strata::__private::inventory::submit! {
                ::strata::message::Registration::new::<::std::option::Option<#ident>>()
            }
            ::strata::__private::inventory::submit! {
                ::strata::message::Registration::new::<
                    ::std::collections::HashMap<::std::string::String, #ident>,
                >()
            }
        }
    });
    Ok(quote! {
        impl #impl_g ::strata::message::Message for #ident #ty_g #where_c {
            fn type_name() -> &'static str { #type_name }
            #as_fault
        }
        #fault_impl
        #submit
    })
}

/// Turns an `impl` block into a machine: one handler per message type.
///
/// Every method of the form `fn name(&mut self, cx: &mut Context<Self>, m: T)` is a handler
/// for what its parameter type `T` accepts; other methods are left alone. `T` is any type
/// implementing `strata::FromEnvelope`: a message type (the handler takes messages of that
/// type), `Envelope` (anything, with its sender), `AnyMessage` (anything) or `AnyFault`
/// (any fault). What a parameter takes is decided by that trait, not by the type's name.
/// Handlers are tried in source order, so put catch-alls last; a message no handler takes
/// goes to `Machine::unhandled`. A handler that returns a value replies with it.
///
/// Guards narrow a handler further; when a guard does not hold, the message goes on to the
/// next handler (then `unhandled`), as if this one did not exist:
///
/// * `#[when(Pattern)]`, with `#[machine(state = field)]`: the handler runs only while
///   `self.field` matches the pattern (a state machine).
/// * `#[guard(expression)]`: the handler runs only when the `bool` expression is true.
///   In scope: `self`, `cx`, `sender` (the `Address` that sent the message) and
///   `envelope` (a `&Envelope`, before the message is taken out). For example
///   `#[guard(sender == cx.address())]` (from this machine itself, such as its own
///   timers), `#[guard(sender == self.load)]` (from one child), or
///   `#[guard(!self.workers.contains(&sender))]`. Several `#[guard]`s must all hold.
///
/// A guard is evaluated only when the parameter type accepts the message (and the state
/// matches), so it can be as specific as it likes. Keep guards free of side effects.
#[proc_macro_attribute]
pub fn machine(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemImpl);
    machine_impl(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// True when `tokens` name any of `names` (so a handler's parameter type written with
/// them differs between instantiations of a generic machine).
fn mentions(tokens: Tokens, names: &[syn::Ident]) -> bool {
    tokens.into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(ident) => names.contains(&ident),
        proc_macro2::TokenTree::Group(group) => mentions(group.stream(), names),
        _ => false,
    })
}

/// The names a handler's parameter type may depend on in a generic `impl`: its type and
/// const parameters, and `Self`.
fn generic_names(generics: &syn::Generics) -> Vec<syn::Ident> {
    let mut names: Vec<syn::Ident> = generics
        .type_params()
        .map(|p| p.ident.clone())
        .chain(generics.const_params().map(|p| p.ident.clone()))
        .collect();
    if !generics.params.is_empty() {
        names.push(format_ident!("Self"));
    }
    names
}

/// What `#[when]` and `#[guard]` on one handler asked for.
#[derive(Default)]
struct Guards {
    state: Option<Pat>,
    exprs: Vec<Expr>,
}

/// Takes `#[when]` and `#[guard]` off `attrs`, leaving the others.
fn take_guards(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Guards> {
    let mut guards = Guards::default();
    let mut kept = Vec::new();
    for a in attrs.drain(..) {
        if a.path().is_ident("when") {
            if guards.state.is_some() {
                return Err(syn::Error::new(
                    a.span(),
                    "one #[when] per handler: join the states with `|`",
                ));
            }
            guards.state = Some(a.parse_args_with(Pat::parse_multi_with_leading_vert)?);
        } else if a.path().is_ident("guard") {
            guards.exprs.push(a.parse_args::<Expr>()?);
        } else {
            kept.push(a);
        }
    }
    *attrs = kept;
    Ok(guards)
}

fn machine_impl(attr: Tokens, mut item: ItemImpl) -> syn::Result<Tokens> {
    let mut state_field: Option<syn::Ident> = None;
    let args = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    for arg in args {
        match &arg {
            Meta::NameValue(nv) if nv.path.is_ident("state") => match &nv.value {
                Expr::Path(p) if p.path.get_ident().is_some() => {
                    state_field = p.path.get_ident().cloned();
                }
                Expr::Lit(l) => match &l.lit {
                    Lit::Str(s) => state_field = Some(format_ident!("{}", s.value())),
                    _ => return Err(syn::Error::new(l.span(), "expected a field name")),
                },
                other => return Err(syn::Error::new(other.span(), "expected a field name")),
            },
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "expected `state = field` (the field that holds the machine's state)",
                ))
            }
        }
    }
    if item.trait_.is_some() {
        return Err(syn::Error::new(
            item.span(),
            "#[machine] goes on an inherent impl block (`impl MyMachine { ... }`)",
        ));
    }

    let generic = generic_names(&item.generics);
    let mut arms = Vec::new();
    // Registrations the same for every instantiation, and those that depend on the
    // machine's generic parameters.
    let mut registers_once = Vec::new();
    let mut registers_each = Vec::new();
    let mut any_guard = false;
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        let guards = take_guards(&mut f.attrs)?;
        let inputs: Vec<_> = f.sig.inputs.iter().collect();
        let is_handler = inputs.len() == 3 && matches!(inputs[0], FnArg::Receiver(_));
        if !is_handler {
            if guards.state.is_some() || !guards.exprs.is_empty() {
                return Err(syn::Error::new(
                    f.sig.ident.span(),
                    "#[when] and #[guard] go on a handler: fn(&mut self, cx: &mut Context<Self>, msg: T)",
                ));
            }
            continue;
        }
        let FnArg::Typed(msg) = inputs[2] else {
            unreachable!()
        };
        let ty = &*msg.ty;
        let param = quote!(<#ty as ::strata::FromEnvelope>);
        let register = quote!(#param::register(););
        if mentions(quote!(#ty), &generic) {
            registers_each.push(register);
        } else {
            registers_once.push(register);
        }
        let and_state = match (&guards.state, &state_field) {
            (Some(p), Some(field)) => Some(quote!(&&::std::matches!(self.#field, #p))),
            (Some(p), None) => {
                return Err(syn::Error::new(
                    p.span(),
                    "#[when] needs the state field: write #[machine(state = field)]",
                ))
            }
            (None, _) => None,
        };
        let name = &f.sig.ident;
        let returns = !matches!(f.sig.output, ReturnType::Default);
        let call = if returns {
            quote! {
                let __value = self.#name(cx, __m);
                cx.reply(__value);
                return;
            }
        } else {
            quote! { self.#name(cx, __m); return; }
        };
        let take_and_call = quote! {
            let __m = #param::from_envelope(envelope);
            #call
        };
        let body = if guards.exprs.is_empty() {
            take_and_call
        } else {
            any_guard = true;
            let exprs = &guards.exprs;
            quote! {
                let __guard: bool = {
                    let envelope: &::strata::Envelope = &envelope;
                    #((#exprs))&&*
                };
                if __guard {
                    #take_and_call
                }
            }
        };
        arms.push(quote! {
            if #param::accepts(&envelope, __id) #and_state {
                #body
            }
        });
    }

    let self_ty = &item.self_ty;
    let (impl_g, _, where_c) = item.generics.split_for_impl();
    // Types that are the same for every instantiation register once per process (a
    // function-local static is shared by all instantiations of a generic machine); the
    // others each time the machine starts.
    let once = (!registers_once.is_empty()).then(|| {
        quote! {
            static REGISTERED: ::std::sync::Once = ::std::sync::Once::new();
            REGISTERED.call_once(|| { #(#registers_once)* });
        }
    });
    let sender = any_guard.then(|| quote!(let sender: ::strata::Address = envelope.sender();));
    Ok(quote! {
        #item
        impl #impl_g ::strata::Machine for #self_ty #where_c {
            #[allow(unreachable_code, unused_variables, clippy::needless_return)]
            fn receive(&mut self, cx: &mut ::strata::Context<Self>, envelope: ::strata::Envelope) {
                let __id = envelope.message().type_id();
                #sender
                #(#arms)*
                ::strata::Machine::unhandled(self, cx, envelope)
            }
            fn register_types() {
                #once
                #(#registers_each)*
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(impl_block: ItemImpl) -> Vec<syn::Ident> {
        generic_names(&impl_block.generics)
    }

    #[test]
    fn a_parameter_type_depends_on_the_generics_it_names() {
        let generic = names(syn::parse_quote!(
            impl<T: Message, const N: usize> M<T, N> {}
        ));
        let depends = |ty: syn::Type| mentions(quote!(#ty), &generic);
        assert!(depends(syn::parse_quote!(T)));
        assert!(depends(syn::parse_quote!(Vec<Option<T>>)));
        assert!(depends(syn::parse_quote!([u8; N])));
        assert!(depends(syn::parse_quote!(<Self as Tr>::Item)));
        assert!(!depends(syn::parse_quote!(Start)));
        assert!(!depends(syn::parse_quote!(crate::module::Ticket)));
        assert!(!depends(syn::parse_quote!(Vec<Tally>)));
    }

    #[test]
    fn a_plain_impl_has_no_generic_names() {
        assert!(names(syn::parse_quote!(impl M {})).is_empty());
    }

    #[test]
    fn guards_are_taken_off_and_other_attributes_kept() {
        let mut f: syn::ImplItemFn = syn::parse_quote! {
            #[doc = "kept"]
            #[when(S::A | S::B)]
            #[guard(sender == cx.address())]
            #[guard(!self.busy)]
            fn f(&mut self, cx: &mut Context<Self>, m: Ping) {}
        };
        let guards = take_guards(&mut f.attrs).unwrap();
        assert!(guards.state.is_some());
        assert_eq!(guards.exprs.len(), 2);
        assert_eq!(f.attrs.len(), 1);
        assert!(f.attrs[0].path().is_ident("doc"));
    }

    #[test]
    fn a_second_when_is_refused() {
        let mut f: syn::ImplItemFn = syn::parse_quote! {
            #[when(S::A)]
            #[when(S::B)]
            fn f(&mut self, cx: &mut Context<Self>, m: Ping) {}
        };
        assert!(take_guards(&mut f.attrs).is_err());
    }

    #[test]
    fn dispatch_names_the_trait_not_the_type() {
        let item: ItemImpl = syn::parse_quote! {
            impl M {
                fn a(&mut self, cx: &mut Context<Self>, m: my::Envelope) {}
            }
        };
        let out = machine_impl(Tokens::new(), item).unwrap().to_string();
        assert!(out.contains("FromEnvelope > :: accepts"), "{out}");
        assert!(!out.contains("into_message"), "{out}");
    }
}
