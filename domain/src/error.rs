//! The one error every constructor in this crate returns: which field was wrong and why.

/// A value that failed validation. `field` is the API field name so the gateway can tell the
/// client exactly what to fix: a name (`phone`), or a path to one element of a list
/// (`lines[2].end`) where the client must know which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: std::borrow::Cow<'static, str>,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<std::borrow::Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}
