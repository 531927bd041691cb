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
    ReturnType, Token, Type,
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
/// for messages of type `T`; other methods are left alone. Handlers are tried in source
/// order. A handler that returns a value replies with it. Special parameter types:
/// `Envelope` (anything, with its sender), `AnyMessage` (anything) and `AnyFault` (any
/// fault). With `#[machine(state = field)]` the machine is a state machine and a handler
/// may carry `#[when(Pattern)]`: it runs only while `self.field` matches the pattern.
#[proc_macro_attribute]
pub fn machine(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as ItemImpl);
    machine_impl(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

enum Catch {
    Typed(Box<Type>),
    Envelope,
    Any,
    Fault,
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
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

    let mut arms = Vec::new();
    let mut registers = Vec::new();
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        let mut guard: Option<Pat> = None;
        let mut kept = Vec::new();
        for a in f.attrs.drain(..) {
            if a.path().is_ident("when") {
                guard = Some(a.parse_args_with(Pat::parse_multi_with_leading_vert)?);
            } else {
                kept.push(a);
            }
        }
        f.attrs = kept;
        let inputs: Vec<_> = f.sig.inputs.iter().collect();
        let is_handler = inputs.len() == 3 && matches!(inputs[0], FnArg::Receiver(_));
        if !is_handler {
            if let Some(g) = guard {
                return Err(syn::Error::new(
                    g.span(),
                    "#[when] goes on a handler: fn(&mut self, cx: &mut Context<Self>, msg: T)",
                ));
            }
            continue;
        }
        let FnArg::Typed(msg) = inputs[2] else {
            unreachable!()
        };
        let ty = (*msg.ty).clone();
        let catch = match last_ident(&ty).as_deref() {
            Some("Envelope") => Catch::Envelope,
            Some("AnyMessage") => Catch::Any,
            Some("AnyFault") => Catch::Fault,
            _ => Catch::Typed(Box::new(ty)),
        };
        let guard_expr = match (&guard, &state_field) {
            (Some(p), Some(field)) => quote!(::std::matches!(self.#field, #p)),
            (Some(p), None) => {
                return Err(syn::Error::new(
                    p.span(),
                    "#[when] needs the state field: write #[machine(state = field)]",
                ))
            }
            (None, _) => quote!(),
        };
        let name = &f.sig.ident;
        let returns = !matches!(f.sig.output, ReturnType::Default);
        let call = |arg: Tokens| {
            if returns {
                quote! {{
                    let __value = self.#name(cx, #arg);
                    cx.reply(__value);
                    return;
                }}
            } else {
                quote! {{ self.#name(cx, #arg); return; }}
            }
        };
        let arm = match catch {
            Catch::Typed(t) => {
                registers.push(quote!(::strata::message::register::<#t>();));
                let c = call(quote!(__m));
                let and_guard = guard.as_ref().map(|_| quote!(&& #guard_expr));
                quote! {
                    if __id == ::std::any::TypeId::of::<#t>() #and_guard {
                        let __m = match envelope.take::<#t>() {
                            ::std::result::Result::Ok(m) => m,
                            ::std::result::Result::Err(_) => ::std::unreachable!(),
                        };
                        #c
                    }
                }
            }
            Catch::Envelope => {
                let c = call(quote!(envelope));
                if guard.is_some() {
                    quote!(if #guard_expr #c)
                } else {
                    c
                }
            }
            Catch::Any => {
                let c = call(quote!(envelope.into_message()));
                if guard.is_some() {
                    quote!(if #guard_expr #c)
                } else {
                    c
                }
            }
            Catch::Fault => {
                let c = call(quote!(::strata::AnyFault::from_message(
                    envelope.into_message()
                )));
                let and_guard = guard.as_ref().map(|_| quote!(&& #guard_expr));
                quote!(if envelope.is_fault() #and_guard #c)
            }
        };
        arms.push(arm);
    }

    let self_ty = &item.self_ty;
    let (impl_g, _, where_c) = item.generics.split_for_impl();
    // A non-generic machine registers its handler types once per process; a generic one
    // (whose function-local static would be shared by every instantiation) each start.
    let registration = if item.generics.params.is_empty() {
        quote! {
            static REGISTERED: ::std::sync::Once = ::std::sync::Once::new();
            REGISTERED.call_once(|| { #(#registers)* });
        }
    } else {
        quote! { #(#registers)* }
    };
    Ok(quote! {
        #item
        impl #impl_g ::strata::Machine for #self_ty #where_c {
            #[allow(unreachable_code, unused_variables, clippy::needless_return)]
            fn receive(&mut self, cx: &mut ::strata::Context<Self>, envelope: ::strata::Envelope) {
                let __id = envelope.message().type_id();
                #(#arms)*
                ::strata::Machine::unhandled(self, cx, envelope)
            }
            fn register_types() {
                #registration
            }
        }
    })
}
