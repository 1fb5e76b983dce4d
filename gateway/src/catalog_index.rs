//! The catalogue in memory: a few dozen departments and a few hundred doctors are read on every
//! home page and search, so they are loaded once from the store into this index (rebuilt when
//! staff change them) and searched here, by Chinese substring and pinyin initials (INFO-4).
//!
//! The index holds every department and doctor, switched off or not: staff pages, names on
//! existing bookings and the live topics read it whole. What patients browse goes through the
//! `open`/`public_*` readers, which leave out a switched-off department, those below it, and
//! their doctors.

use hospital_domain::catalog::{Department, Doctor, Hospital, SearchKey};
use hospital_domain::{DepartmentId, DoctorId};
use hospital_store::{DataStore, StoreError};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

pub struct CatalogIndex {
    pub hospital: Option<Hospital>,
    pub departments: Vec<Department>,
    pub doctors: Vec<Doctor>,
    dept_by_id: HashMap<DepartmentId, usize>,
    doctor_by_id: HashMap<DoctorId, usize>,
    doctor_keys: Vec<SearchKey>,
    dept_keys: Vec<SearchKey>,
    /// Departments switched off, or below one that is.
    closed: HashSet<DepartmentId>,
}

/// The departments switched off and every one below them.
fn closed_set(departments: &[Department]) -> HashSet<DepartmentId> {
    let mut closed: HashSet<DepartmentId> = departments.iter().filter(|d| !d.enabled).map(|d| d.id).collect();
    // Parents need not come before children: grow the set until it stops growing.
    loop {
        let before = closed.len();
        for d in departments {
            if d.parent_id.is_some_and(|p| closed.contains(&p)) {
                closed.insert(d.id);
            }
        }
        if closed.len() == before {
            return closed;
        }
    }
}

/// Indexes of the keys matching `q`, best first. The sort is stable, so equal scores keep the
/// index order (popularity for doctors, display order for departments).
fn ranked(keys: &[SearchKey], q: &str) -> Vec<usize> {
    let mut hits: Vec<(u32, usize)> =
        keys.iter().enumerate().map(|(i, k)| (k.score(q), i)).filter(|(s, _)| *s > 0).collect();
    hits.sort_by_key(|h| std::cmp::Reverse(h.0));
    hits.into_iter().map(|(_, i)| i).collect()
}

/// A department with its children, for the home page's navigation (INFO-2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DepartmentNode {
    #[serde(flatten)]
    pub department: Department,
    #[schema(no_recursion)]
    pub children: Vec<DepartmentNode>,
}

impl CatalogIndex {
    pub async fn load(store: &dyn DataStore) -> Result<Self, StoreError> {
        Ok(Self::new(store.hospital().await?, store.departments().await?, store.doctors().await?))
    }

    pub fn new(hospital: Option<Hospital>, departments: Vec<Department>, mut doctors: Vec<Doctor>) -> Self {
        doctors.sort_by(|a, b| b.popularity.cmp(&a.popularity).then_with(|| a.name.cmp(&b.name)));
        let dept_by_id: HashMap<_, _> = departments.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let doctor_by_id = doctors.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let dept_keys = departments.iter().map(|d| SearchKey::new([d.name.as_str(), d.description.as_str()])).collect();
        let doctor_keys = doctors
            .iter()
            .map(|d| {
                let dept = dept_by_id.get(&d.department_id).map(|&i| departments[i].name.as_str()).unwrap_or("");
                let mut fields = vec![d.name.as_str()];
                fields.extend(d.specialties.iter().map(String::as_str));
                fields.push(dept);
                SearchKey::new(fields)
            })
            .collect();
        let closed = closed_set(&departments);
        Self { hospital, departments, doctors, dept_by_id, doctor_by_id, doctor_keys, dept_keys, closed }
    }

    /// Whether patients see the department and may book in it: it exists, and neither it nor a
    /// department above it is switched off.
    pub fn open(&self, id: DepartmentId) -> bool {
        self.dept_by_id.contains_key(&id) && !self.closed.contains(&id)
    }

    /// Whether any department is switched off (if none, nothing needs checking).
    pub fn any_closed(&self) -> bool {
        !self.closed.is_empty()
    }

    /// A department as patients see it: None when switched off (or below one that is).
    pub fn public_department(&self, id: DepartmentId) -> Option<&Department> {
        self.department(id).filter(|d| self.open(d.id))
    }

    /// A doctor as patients see them: None when their department is switched off.
    pub fn public_doctor(&self, id: DoctorId) -> Option<&Doctor> {
        self.doctor(id).filter(|d| self.open(d.department_id))
    }

    pub fn department(&self, id: DepartmentId) -> Option<&Department> {
        self.dept_by_id.get(&id).map(|&i| &self.departments[i])
    }

    pub fn doctor(&self, id: DoctorId) -> Option<&Doctor> {
        self.doctor_by_id.get(&id).map(|&i| &self.doctors[i])
    }

    /// The whole department tree, switched-off branches too (the staff's view), siblings in
    /// their `sort` order.
    pub fn tree(&self) -> Vec<DepartmentNode> {
        self.tree_of(None, false)
    }

    /// The department tree as patients see it: no switched-off branch.
    pub fn public_tree(&self) -> Vec<DepartmentNode> {
        self.tree_of(None, true)
    }

    fn tree_of(&self, parent: Option<DepartmentId>, public: bool) -> Vec<DepartmentNode> {
        let mut v: Vec<&Department> =
            self.departments.iter().filter(|d| d.parent_id == parent && (!public || self.open(d.id))).collect();
        v.sort_by(|a, b| a.sort.cmp(&b.sort).then_with(|| a.name.cmp(&b.name)));
        v.into_iter()
            .map(|d| DepartmentNode { department: d.clone(), children: self.tree_of(Some(d.id), public) })
            .collect()
    }

    /// Doctors of a department and of all departments below it.
    pub fn doctors_under(&self, dept: DepartmentId) -> Vec<&Doctor> {
        let mut ids = vec![dept];
        let mut i = 0;
        while i < ids.len() {
            let parent = ids[i];
            ids.extend(self.departments.iter().filter(|d| d.parent_id == Some(parent)).map(|d| d.id));
            i += 1;
        }
        self.doctors.iter().filter(|d| ids.contains(&d.department_id)).collect()
    }

    /// Doctors matching `q`, best first; with no query, all (most popular first).
    pub fn search_doctors(&self, q: Option<&str>) -> Vec<&Doctor> {
        match q.map(str::trim).filter(|q| !q.is_empty()) {
            None => self.doctors.iter().collect(),
            Some(q) => ranked(&self.doctor_keys, q).into_iter().map(|i| &self.doctors[i]).collect(),
        }
    }

    pub fn search_departments(&self, q: &str) -> Vec<&Department> {
        ranked(&self.dept_keys, q).into_iter().map(|i| &self.departments[i]).collect()
    }

    /// The `n` most popular doctors patients can see.
    pub fn popular(&self, n: usize) -> Vec<&Doctor> {
        self.doctors.iter().filter(|d| self.open(d.department_id)).take(n).collect()
    }
}
