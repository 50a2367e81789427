//! Assembler errors: always tied to a 1-based source line so a user can find the culprit.

/// What is wrong with one assembler line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    /// The first token is not an instruction this assembler knows.
    #[error("unknown mnemonic `{0}`")]
    UnknownMnemonic(String),
    /// A register operand outside `%r0..%r15`, or something that is not a register where one
    /// is required.
    #[error("invalid register `{0}` (expected %r0..%r10)")]
    BadRegister(String),
    /// A number that does not parse at all.
    #[error("invalid number `{0}`")]
    BadNumber(String),
    /// An immediate outside what the field can hold.
    #[error("immediate `{value}` out of range ({range})")]
    ImmOutOfRange {
        /// The operand as written.
        value: String,
        /// The accepted range, for the message.
        range: &'static str,
    },
    /// A memory or jump offset outside the signed 16-bit `off` field.
    #[error("offset `{0}` out of i16 range")]
    OffsetOutOfRange(String),
    /// A relative target that does not fit the field it is encoded in.
    #[error("target `{target}` is {distance} slots away, out of range for {field}")]
    TargetOutOfRange {
        /// The target as written.
        target: String,
        /// The relative distance it resolves to.
        distance: i64,
        /// Which field holds it (`off (i16)` or `imm (i32)`).
        field: &'static str,
    },
    /// A jump or call names a label that is defined nowhere.
    #[error("unknown label `{0}`")]
    UnknownLabel(String),
    /// A label defined twice.
    #[error("duplicate label `{label}` (first defined on line {first_line})")]
    DuplicateLabel {
        /// The label.
        label: String,
        /// Where it was first defined.
        first_line: usize,
    },
    /// A label name with characters that cannot be referenced.
    #[error("invalid label name `{0}`")]
    BadLabel(String),
    /// The mnemonic takes a different number of operands.
    #[error("invalid number of operands for {mnemonic}: expected {expected}, got {got}")]
    OperandCount {
        /// The mnemonic.
        mnemonic: String,
        /// What it takes, in words (`2`, `1 or 2`).
        expected: &'static str,
        /// How many were given.
        got: usize,
    },
    /// A memory operand that is not `[%rN]`, `[%rN+off]` or `[%rN-off]`.
    #[error("invalid memory operand `{0}` (expected [%rN+off])")]
    BadMemOperand(String),
    /// An operand that is malformed in some other way.
    #[error("invalid operand `{operand}`: {why}")]
    BadOperand {
        /// The operand as written.
        operand: String,
        /// What was expected.
        why: &'static str,
    },
    /// A `[` without its `]`.
    #[error("unterminated `[` in `{0}`")]
    UnterminatedBracket(String),
}

/// An assembler failure at a 1-based line of the input text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct AsmError {
    /// 1-based line number in the assembled text.
    pub line: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}
