//! Command-line parsing for dtrace(1): FreeBSD's option set, with options allowed after operands
//! (operands that are not option arguments become the macro arguments `$1`, `$2`, ...), as
//! dtrace's repeated-getopt loop allows.

use std::ffi::OsString;

/// Where a D program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramSource {
    /// `-s file`
    File(String),
    /// `-n`/`-P`/`-m`/`-f`/`-i` probe specifier text, with the option letter.
    Spec(char, String),
}

/// Everything the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub programs: Vec<ProgramSource>,
    /// Operands: macro arguments `$1..`.
    pub macro_args: Vec<String>,
    /// `-x` and option-like flags (`-q`, `-w`, `-F`, `-b`...) in order.
    pub options: Vec<(String, Option<String>)>,
    /// `-e`: compile only.
    pub compile_only: bool,
    /// `-S`: show DIF.
    pub show_dif: bool,
    /// `-C` and the cpp arguments (`-D`, `-U`, `-I`, `-H`).
    pub cpp: bool,
    pub cpp_args: Vec<String>,
    /// `-Z`.
    pub zdefs: bool,
    /// `-l`: list probes.
    pub list: bool,
    /// `-v`: verbose (with `-l`: stability).
    pub verbose: bool,
    /// `-V`: print the version.
    pub version: bool,
    /// `-c cmd` / `-p pid`.
    pub commands: Vec<String>,
    pub pids: Vec<String>,
    /// `-o file`.
    pub output: Option<String>,
}

/// A usage problem (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The message, printed after `dtrace: `.
    pub message: String,
    /// Whether dtrace(1) follows the message with its usage text (it does
    /// for option syntax errors, not for conflicting modes).
    pub show_usage: bool,
}

impl UsageError {
    fn with_usage(message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            show_usage: true,
        }
    }
}

/// FreeBSD's message when more than one of the mode options is given.
pub const ONE_MODE_ONLY: &str = "only one of the [-AGhlV] options can be specified at a time";

/// lexopt's errors in getopt(3)'s words.
fn getopt_error(e: lexopt::Error) -> UsageError {
    match e {
        lexopt::Error::MissingValue {
            option: Some(option),
        } => UsageError::with_usage(format!(
            "option requires an argument -- {}",
            option.trim_start_matches('-')
        )),
        other => UsageError::with_usage(other.to_string()),
    }
}

fn val(p: &mut lexopt::Parser) -> Result<String, UsageError> {
    p.value()
        .map_err(getopt_error)
        .map(|v| v.to_string_lossy().into_owned())
}

/// Parses the arguments (without the program name).
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Config, UsageError> {
    use lexopt::Arg::*;
    let mut c = Config::default();
    let mut p = lexopt::Parser::from_args(args);
    // -l and -V each select a mode; dtrace(1) accepts only one (-A, -G and
    // -h, the other modes, are rejected as unsupported below).
    let mut modes = 0u32;
    loop {
        let arg = p.next().map_err(getopt_error)?;
        let Some(arg) = arg else { break };
        match arg {
            Short('s') => c.programs.push(ProgramSource::File(val(&mut p)?)),
            Short(ch @ ('n' | 'P' | 'm' | 'f' | 'i')) => {
                c.programs.push(ProgramSource::Spec(ch, val(&mut p)?))
            }
            Short('x') => {
                let v = val(&mut p)?;
                match v.split_once('=') {
                    Some((n, x)) => c.options.push((n.to_string(), Some(x.to_string()))),
                    None => c.options.push((v, None)),
                }
            }
            Short('q') => c.options.push(("quiet".into(), None)),
            Short('w') => c.options.push(("destructive".into(), None)),
            Short('F') => c.options.push(("flowindent".into(), None)),
            Short('b') => c.options.push(("bufsize".into(), Some(val(&mut p)?))),
            Short('e') => c.compile_only = true,
            Short('S') => c.show_dif = true,
            Short('C') => c.cpp = true,
            Short(ch @ ('D' | 'U' | 'I')) => {
                let v = val(&mut p)?;
                c.cpp_args.push(format!("-{}{}", ch, v));
            }
            Short('H') => c.cpp_args.push("-H".into()),
            Short('Z') => c.zdefs = true,
            Short('l') => {
                c.list = true;
                modes += 1;
            }
            Short('v') => c.verbose = true,
            Short('V') => {
                c.version = true;
                modes += 1;
            }
            Short('c') => c.commands.push(val(&mut p)?),
            Short('p') => c.pids.push(val(&mut p)?),
            Short('o') => c.output = Some(val(&mut p)?),
            Short('X') => {
                let v = val(&mut p)?;
                if !matches!(v.as_str(), "a" | "c" | "s" | "t") {
                    return Err(UsageError::with_usage(format!("invalid -X mode: {}", v)));
                }
            }
            Short('L') => c.cpp_args.push(format!("-I{}", val(&mut p)?)),
            Short(ch @ ('a' | 'A' | 'B' | 'G' | 'h' | '3' | '6')) => {
                return Err(UsageError::with_usage(format!(
                    "option -{} is not supported",
                    ch
                )));
            }
            Short(ch) => return Err(UsageError::with_usage(format!("illegal option -- {}", ch))),
            // FreeBSD's libxo switch: `--libxo json[,pretty]` is `-x oformat=…`.
            Long("libxo") => c.options.push(("oformat".into(), Some(val(&mut p)?))),
            Long(l) => return Err(UsageError::with_usage(format!("illegal option -- -{}", l))),
            Value(v) => c.macro_args.push(v.to_string_lossy().into_owned()),
        }
    }
    if modes > 1 {
        return Err(UsageError {
            message: ONE_MODE_ONLY.to_string(),
            show_usage: false,
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Config, UsageError> {
        parse(v.iter().map(OsString::from))
    }

    #[test]
    fn options_after_operands() {
        let c = p(&["-s", "x.d", "1234", "-e", "-xerrtags", "-qC", "-DX=1"]).unwrap();
        assert_eq!(c.programs, vec![ProgramSource::File("x.d".into())]);
        assert_eq!(c.macro_args, vec!["1234".to_string()]);
        assert!(c.compile_only && c.cpp);
        assert_eq!(
            c.options,
            vec![("errtags".into(), None), ("quiet".into(), None)]
        );
        assert_eq!(c.cpp_args, vec!["-DX=1".to_string()]);
    }

    #[test]
    fn libxo_selects_the_output_format() {
        let c = p(&["--libxo", "json,pretty", "-n", "BEGIN"]).unwrap();
        assert_eq!(
            c.options,
            vec![("oformat".into(), Some("json,pretty".into()))]
        );
    }

    #[test]
    fn clustered_s_and_x_values() {
        let c = p(&["-qs", "f.d", "-x", "strsize=64", "-n", "BEGIN"]).unwrap();
        assert_eq!(c.programs.len(), 2);
        assert_eq!(c.options[1], ("strsize".into(), Some("64".into())));
        assert!(p(&["-k"]).unwrap_err().show_usage);
    }

    #[test]
    fn only_one_mode_option() {
        let e = p(&["-V", "-l"]).unwrap_err();
        assert_eq!(e.message, ONE_MODE_ONLY);
        assert!(!e.show_usage);
        assert!(p(&["-l", "-l"]).is_err());
        assert!(p(&["-l", "-v", "-n", "BEGIN"]).is_ok());
    }

    #[test]
    fn missing_option_argument_in_getopt_words() {
        let e = p(&["-n", "BEGIN", "-x"]).unwrap_err();
        assert_eq!(e.message, "option requires an argument -- x");
        assert!(e.show_usage);
    }
}
