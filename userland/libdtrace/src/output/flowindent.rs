//! `-F` / `flowindent`: entry/return classification, the indentation
//! heuristic (same probe id under a different EPID does not indent) and the
//! `%3d %-41s ` line prefix with ` -> `, ` <- `, ` => `, ` <= ` or `| `.
//! Not probe context.

use super::model::ProbeFiring;

/// Flow direction of a probe firing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    None,
    Entry,
    Return,
}

/// `entry`/`return` or a name ending in `-entry`/`-return`.
pub fn classify(name: &str) -> Flow {
    let is = |word: &str| name == word || name.strip_suffix(word).is_some_and(|p| p.ends_with('-'));
    if is("entry") {
        Flow::Entry
    } else if is("return") {
        Flow::Return
    } else {
        Flow::None
    }
}

/// Indentation state carried across probe firings.
#[derive(Clone, Debug, Default)]
pub struct FlowState {
    indent: usize,
    /// (epid, probe id) of the previous firing.
    last: Option<(u32, u32)>,
}

impl FlowState {
    /// Computes the FUNCTION column for `p` and updates the indentation.
    /// `next` is the (epid, probe id) of the following record in the same
    /// buffer, which decides whether a return unindents.
    pub fn column(&mut self, p: &ProbeFiring, next: Option<(u32, u32)>) -> String {
        let syscall = p.provider == "syscall";
        let mut flow = classify(&p.name);
        if flow == Flow::Entry {
            if let Some((epid, id)) = self.last {
                if epid != p.epid && id == p.probe_id {
                    flow = Flow::None;
                }
            }
        }
        if flow == Flow::Return {
            if let Some((epid, id)) = next {
                if epid != p.epid && id == p.probe_id {
                    flow = Flow::None;
                }
            }
        }
        let prefix = match (flow, syscall) {
            (Flow::Entry, false) => " -> ",
            (Flow::Entry, true) => " => ",
            (Flow::Return, false) => " <- ",
            (Flow::Return, true) => " <= ",
            (Flow::None, _) => "| ",
        };
        if flow == Flow::Return && self.indent > 0 {
            self.indent -= 2;
        }
        let pad = " ".repeat(self.indent);
        let text = if flow == Flow::None {
            format!("{pad}{prefix}{}:{}", p.function, p.name)
        } else {
            format!("{pad}{prefix}{}", p.function)
        };
        if flow == Flow::Entry {
            self.indent += 2;
        }
        self.last = Some((p.epid, p.probe_id));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(epid: u32, id: u32, func: &str, name: &str) -> ProbeFiring {
        ProbeFiring {
            cpu: 0,
            epid,
            probe_id: id,
            provider: "fbt".into(),
            module: "kernel".into(),
            function: func.into(),
            name: name.into(),
            timestamp: 0,
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify("entry"), Flow::Entry);
        assert_eq!(classify("method-entry"), Flow::Entry);
        assert_eq!(classify("gentry"), Flow::None);
        assert_eq!(classify("return"), Flow::Return);
        assert_eq!(classify("tick-1s"), Flow::None);
    }

    #[test]
    fn indents_and_unindents() {
        let mut st = FlowState::default();
        assert_eq!(st.column(&probe(1, 10, "open", "entry"), None), " -> open");
        assert_eq!(
            st.column(&probe(2, 11, "namei", "entry"), None),
            "   -> namei"
        );
        assert_eq!(
            st.column(&probe(3, 12, "namei", "return"), None),
            "   <- namei"
        );
        assert_eq!(st.column(&probe(4, 13, "open", "return"), None), " <- open");
        assert_eq!(st.column(&probe(5, 14, "", "tick-1s"), None), "| :tick-1s");
    }
}
