//! The binary edge: parse the command line and hand over to [`presence_proxy::cli`].

fn main() -> std::process::ExitCode {
    presence_proxy::cli::main()
}
