//! `dtrace -l` / `dtrace -lv` text: the `ID PROVIDER MODULE FUNCTION NAME`
//! heading, one right-aligned row per probe and the `-v` stability and
//! argument-type block, as dtrace(1) prints them. Not probe context.

/// Stability levels (`dtrace_stability_t`) in numeric order.
pub const STABILITY_NAMES: [&str; 8] = [
    "Internal", "Private", "Obsolete", "External", "Unstable", "Evolving", "Stable", "Standard",
];

/// Dependency classes (`dtrace_class_t`) in numeric order.
pub const CLASS_NAMES: [&str; 6] = ["Unknown", "CPU", "Platform", "Group", "ISA", "Common"];

/// One attribute triple (name stability, data stability, dependency class).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub name: u8,
    pub data: u8,
    pub class: u8,
}

impl From<rdtrace_ffi::attr::Attribute> for Attributes {
    fn from(a: rdtrace_ffi::attr::Attribute) -> Self {
        Attributes {
            name: a.name,
            data: a.data,
            class: a.class,
        }
    }
}

fn stability(v: u8) -> &'static str {
    STABILITY_NAMES
        .get(usize::from(v))
        .copied()
        .unwrap_or("Unknown")
}

fn class(v: u8) -> &'static str {
    CLASS_NAMES
        .get(usize::from(v))
        .copied()
        .unwrap_or("Unknown")
}

/// The heading line.
pub fn heading() -> String {
    format!(
        "{:>5} {:>10} {:>17} {:>33} {}\n",
        "ID", "PROVIDER", "MODULE", "FUNCTION", "NAME"
    )
}

/// One probe row.
pub fn row(id: u32, provider: &str, module: &str, function: &str, name: &str) -> String {
    format!("{id:>5} {provider:>10} {module:>17} {function:>33} {name}\n")
}

fn attribute_lines(out: &mut String, a: &Attributes) {
    out.push_str(&format!("\t\tIdentifier Names: {}\n", stability(a.name)));
    out.push_str(&format!("\t\tData Semantics:   {}\n", stability(a.data)));
    out.push_str(&format!("\t\tDependency Class: {}\n", class(a.class)));
}

/// The `dtrace -v` stability report of one compiled program (`kind` is `script` or
/// `description`, `name` the script path or the specifier up to its first `{`, `/` or `;`):
/// the minimum probe description and statement attributes. dtrace(1) follows it with a
/// blank line when it enables the program, or with one [`statement_block`] per enabling
/// under `-e`.
pub fn program_stability(
    kind: &str,
    name: &str,
    description: &Attributes,
    statement: &Attributes,
) -> String {
    let mut out = format!("\nStability attributes for {kind} {name}:\n");
    out.push_str("\n\tMinimum Probe Description Attributes\n");
    attribute_lines(&mut out, description);
    out.push_str("\n\tMinimum Statement Attributes\n");
    attribute_lines(&mut out, statement);
    out
}

/// Under `-e -v`: one enabling's description, then (when known) its probe's
/// [`verbose_block`].
pub fn statement_block(description: &str, info: Option<String>) -> String {
    format!("\n{description}\n{}", info.unwrap_or_default())
}

/// The `-v` block printed after a row: probe and argument attributes and
/// the argument types (`None` when there are none).
pub fn verbose_block(probe: &Attributes, args: &Attributes, arg_types: &[String]) -> String {
    let mut out = String::from("\n\tProbe Description Attributes\n");
    attribute_lines(&mut out, probe);
    out.push_str("\n\tArgument Attributes\n");
    attribute_lines(&mut out, args);
    out.push_str("\n\tArgument Types\n");
    for (i, t) in arg_types.iter().enumerate() {
        out.push_str(&format!("\t\targs[{i}]: {t}\n"));
    }
    if arg_types.is_empty() {
        out.push_str("\t\tNone\n");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_and_rows() {
        assert_eq!(
            heading(),
            "   ID   PROVIDER            MODULE                          FUNCTION NAME\n"
        );
        assert_eq!(
            row(1, "dtrace", "", "", "BEGIN"),
            format!("    1 {:>10} {:>17} {:>33} BEGIN\n", "dtrace", "", "")
        );
    }

    #[test]
    fn verbose_layout() {
        let a = Attributes {
            name: 6,
            data: 6,
            class: 5,
        };
        let b = Attributes {
            name: 1,
            data: 1,
            class: 0,
        };
        let text = verbose_block(&a, &b, &["int".into()]);
        assert_eq!(
            text,
            "\n\tProbe Description Attributes\n\t\tIdentifier Names: Stable\n\t\tData Semantics:   Stable\n\t\tDependency Class: Common\n\n\tArgument Attributes\n\t\tIdentifier Names: Private\n\t\tData Semantics:   Private\n\t\tDependency Class: Unknown\n\n\tArgument Types\n\t\targs[0]: int\n\n"
        );
        assert!(verbose_block(&a, &b, &[]).contains("\t\tNone\n"));
    }

    #[test]
    fn program_stability_layout() {
        let unstable = Attributes {
            name: 4,
            data: 4,
            class: 5,
        };
        let private_data = Attributes {
            name: 6,
            data: 1,
            class: 5,
        };
        assert_eq!(
            program_stability("description", "BEGIN", &unstable, &private_data),
            "\nStability attributes for description BEGIN:\n\n\tMinimum Probe Description Attributes\n\t\tIdentifier Names: Unstable\n\t\tData Semantics:   Unstable\n\t\tDependency Class: Common\n\n\tMinimum Statement Attributes\n\t\tIdentifier Names: Stable\n\t\tData Semantics:   Private\n\t\tDependency Class: Common\n"
        );
        assert_eq!(statement_block(":::BEGIN", None), "\n:::BEGIN\n");
    }
}
