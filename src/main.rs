use clap::Parser;
use deploy::settings::Settings;

fn main() {
    let cli = deploy::cli::Cli::parse();
    let code = match Settings::from_cli(cli).and_then(|settings| deploy::commands::run(&settings)) {
        Ok(code) => code,
        Err(err) => {
            // Error text can quote remote output and URLs: secrets from the environment never show.
            eprint!("{}", deploy::config::redact_loaded(&err.to_string()));
            err.code()
        }
    };
    std::process::exit(code);
}
