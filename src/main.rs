use clap::Parser;

fn main() {
    let cli = deploy::cli::Cli::parse();
    let code = match deploy::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{e}");
            e.code()
        }
    };
    std::process::exit(code);
}
