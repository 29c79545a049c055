//! Output of consumed data: one interface, text/JSON/folded backends.
