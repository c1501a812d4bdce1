//! `#[test_on_runtimes]` for tiberius's integration tests.
//!
//! Applied to `async fn name<S>(conn: tiberius::Client<S>) -> Result<()>`, it
//! keeps the function and adds one `#[test]` per async runtime tiberius 0.13
//! tests on (its dev-dependencies: tokio and smol):
//!
//! * `name_tokio`: a tokio runtime, `tokio::net::TcpStream` + tokio-util compat;
//! * `name_smol`: `smol::block_on`, `smol::net::TcpStream`.
//!
//! Each test sets up `env_logger` once through the test file's `LOGGER_SETUP`
//! (`static LOGGER_SETUP: Once`), parses the connection string with
//! `tiberius::Config::from_ado_string`, connects, and calls the function with
//! the client. The connection string is the test file's `CONN_STR` static, or
//! the static named by `#[test_on_runtimes(connection_string = "NAME")]`.
//!
//! `#[cfg]`/`#[cfg_attr]` attributes written below the macro are copied onto
//! the generated tests; `#[ignore]` and `#[should_panic]` are moved to them.

use proc_macro::TokenStream;
use proc_macro2::{Ident, Span};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{parse_macro_input, Attribute, ItemFn, LitStr, Token};

struct Args {
    connection_string: Ident,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut connection_string = Ident::new("CONN_STR", Span::call_site());
        if !input.is_empty() {
            let key: Ident = input.parse()?;
            if key != "connection_string" {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `connection_string = \"STATIC_NAME\"`",
                ));
            }
            input.parse::<Token![=]>()?;
            let name: LitStr = input.parse()?;
            connection_string = name.parse()?;
            let _ = input.parse::<Option<Token![,]>>()?;
            if !input.is_empty() {
                return Err(input.error("unexpected tokens after `connection_string`"));
            }
        }
        Ok(Args { connection_string })
    }
}

fn is(attr: &Attribute, names: &[&str]) -> bool {
    names.iter().any(|n| attr.path().is_ident(n))
}

#[proc_macro_attribute]
pub fn test_on_runtimes(args: TokenStream, input: TokenStream) -> TokenStream {
    let Args { connection_string } = parse_macro_input!(args as Args);
    let mut func = parse_macro_input!(input as ItemFn);

    if func.sig.asyncness.is_none() {
        return syn::Error::new_spanned(&func.sig.fn_token, "#[test_on_runtimes] needs an async fn")
            .to_compile_error()
            .into();
    }

    let cfgs: Vec<Attribute> = func
        .attrs
        .iter()
        .filter(|a| is(a, &["cfg", "cfg_attr"]))
        .cloned()
        .collect();
    let test_attrs: Vec<Attribute> = func
        .attrs
        .iter()
        .filter(|a| is(a, &["ignore", "should_panic"]))
        .cloned()
        .collect();
    func.attrs.retain(|a| !is(a, &["ignore", "should_panic"]));

    let name = func.sig.ident.clone();
    let tokio_test = format_ident!("{}_tokio", name);
    let smol_test = format_ident!("{}_smol", name);

    let expanded = quote! {
        #func

        #(#cfgs)*
        #[test]
        #(#test_attrs)*
        fn #tokio_test() -> ::tiberius::Result<()> {
            LOGGER_SETUP.call_once(|| {
                let _ = ::env_logger::builder().is_test(true).try_init();
            });
            let rt = ::tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                use ::tokio_util::compat::TokioAsyncWriteCompatExt as _;
                let config = ::tiberius::Config::from_ado_string(&#connection_string)?;
                let tcp = ::tokio::net::TcpStream::connect(config.get_addr()).await?;
                tcp.set_nodelay(true)?;
                let client = ::tiberius::Client::connect(config, tcp.compat_write()).await?;
                #name(client).await?;
                ::tiberius::Result::<()>::Ok(())
            })
        }

        #(#cfgs)*
        #[test]
        #(#test_attrs)*
        fn #smol_test() -> ::tiberius::Result<()> {
            LOGGER_SETUP.call_once(|| {
                let _ = ::env_logger::builder().is_test(true).try_init();
            });
            ::smol::block_on(async {
                let config = ::tiberius::Config::from_ado_string(&#connection_string)?;
                let tcp = ::smol::net::TcpStream::connect(config.get_addr()).await?;
                tcp.set_nodelay(true)?;
                let client = ::tiberius::Client::connect(config, tcp).await?;
                #name(client).await?;
                ::tiberius::Result::<()>::Ok(())
            })
        }
    };
    expanded.into()
}
