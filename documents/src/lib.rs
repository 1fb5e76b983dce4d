//! Documents made from a patient's data: the medical record of a visit as a PDF set in a CJK
//! font subset into the file (`pdf`), and one person's data as an HL7 FHIR R4 bundle (`fhir`).
//! Pure: the caller reads the stores and the font file, and gets bytes or JSON back.

pub mod fhir;
pub mod font;
mod hash;
pub mod input;
pub mod pdf;

pub use fhir::{person_bundle, ExportOptions, FhirError, PersonExport};
pub use font::{CjkFont, FontConfig, FontError};
pub use input::{HospitalHeader, PatientInfo};
pub use pdf::{render_medical_record, MedicalRecordInput, PdfError};
