//! `deploy completions SHELL` and `deploy man`: made from the same definitions as `--help`.

use crate::error::Error;

pub fn completions(shell: clap_complete::Shell, cli: &clap::Command) -> Result<i32, Error> {
    // Into memory first: clap_complete panics when stdout fails (`deploy completions bash |
    // head -1`), and `out` ends quietly on a closed pipe.
    let mut cli = cli.clone();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "deploy", &mut script);
    super::out(&String::from_utf8_lossy(&script));
    Ok(0)
}

pub fn man(cli: &clap::Command) -> Result<i32, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cli.clone()).render(&mut page).map_err(|source| Error::File {
        path: "man page".into(),
        action: "render",
        source,
    })?;
    super::out(&String::from_utf8_lossy(&page));
    Ok(0)
}
