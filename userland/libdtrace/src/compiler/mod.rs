//! The D compiler: source text to DIF and DOF, one named pass per module.
