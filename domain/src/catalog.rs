//! The hospital catalogue (INFO-1..4): the hospital, its buildings, the department tree and the
//! doctors, plus the search over them that patients type into (Chinese substrings and pinyin
//! initials, INFO-4).

use serde::{Deserialize, Serialize};

use crate::{DepartmentId, DoctorId, Fen};

/// The search the catalogue's patients type into lives in `search`, shared with the FAQ.
pub use crate::search::{pinyin_initials, SearchKey};

/// The hospital itself (INFO-1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hospital {
    pub name: String,
    pub level: String,
    pub introduction: String,
    pub address: String,
    pub phone: String,
    /// WGS-84 latitude and longitude of the main gate, for the map.
    pub latitude: f64,
    pub longitude: f64,
    pub service_hours: String,
    pub buildings: Vec<Building>,
}

/// In-hospital navigation: a building and what is on each floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Building {
    pub code: String,
    pub name: String,
    pub floors: Vec<Floor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Floor {
    pub level: i32,
    pub rooms: Vec<String>,
}

/// A node of the department tree (INFO-2): 内科 > 心内科. Roots have no parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Department {
    pub id: DepartmentId,
    pub parent_id: Option<DepartmentId>,
    pub name: String,
    pub description: String,
    /// Where it is: building, floor, area.
    pub location: String,
    /// Order among its siblings on the home page.
    pub sort: i32,
    /// Switched off by staff: it, the departments below it, their doctors and sessions leave the
    /// patient API at once and take no new booking; bookings already made stay. Staff still see
    /// it (marked) and can switch it back on. Absent in rows written before it existed: on.
    #[serde(default = "switched_on")]
    pub enabled: bool,
}

fn switched_on() -> bool {
    true
}

/// A doctor's title (职称); it sets the default registration fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoctorTitle {
    /// 主任医师
    ChiefPhysician,
    /// 副主任医师
    AssociateChiefPhysician,
    /// 主治医师
    AttendingPhysician,
    /// 住院医师
    ResidentPhysician,
}

impl DoctorTitle {
    pub fn label(self) -> &'static str {
        match self {
            DoctorTitle::ChiefPhysician => "主任医师",
            DoctorTitle::AssociateChiefPhysician => "副主任医师",
            DoctorTitle::AttendingPhysician => "主治医师",
            DoctorTitle::ResidentPhysician => "住院医师",
        }
    }
    /// The default registration fee for the title (BOOK-1 "fee by title").
    pub fn default_fee(self) -> Fen {
        Fen::new(match self {
            DoctorTitle::ChiefPhysician => 5000,
            DoctorTitle::AssociateChiefPhysician => 3000,
            DoctorTitle::AttendingPhysician => 1500,
            DoctorTitle::ResidentPhysician => 800,
        })
    }
}

/// A doctor of the catalogue (INFO-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Doctor {
    pub id: DoctorId,
    pub department_id: DepartmentId,
    pub name: String,
    pub title: DoctorTitle,
    pub specialties: Vec<String>,
    pub introduction: String,
    /// Bookings over the last weeks, for "popular doctors" on the home page.
    pub popularity: u32,
    /// The doctor's own registration fee, overriding the title's default (`fee`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_fee: Option<Fen>,
    /// The photo's object key (`doctors/<id>/<uuid>.<ext>`, JPEG, PNG or WebP), served at
    /// `GET /api/v1/doctors/{id}/photo/{file}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
}

impl Doctor {
    /// The registration fee of the doctor's new sessions: their own, else the title's default.
    pub fn fee(&self) -> Fen {
        self.own_fee.unwrap_or_else(|| self.title.default_fee())
    }

    /// The file name of the photo (the last segment of its key), as its URL carries it.
    pub fn photo_file(&self) -> Option<&str> {
        self.photo.as_deref().and_then(|k| k.rsplit('/').next())
    }
}
