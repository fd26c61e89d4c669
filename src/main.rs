use clap::Parser;

fn main() {
    let cli = deploy::cli::Cli::parse();
    let code = match deploy::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Error text can quote remote output and URLs: secrets from the environment never show.
            eprint!("{}", deploy::config::redact_loaded(&e.to_string()));
            e.code()
        }
    };
    std::process::exit(code);
}
