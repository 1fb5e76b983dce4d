//! The node's role table (BO-1): the roles and their permissions, loaded from the store (the
//! built-in ones seeded or upgraded first) and reloaded when any node changes one. `access`
//! checks a caller's permissions against it.

use hospital_domain::access::{builtin_roles, Permission, RoleDef, RoleTable};
use hospital_store::{DataStore, Docs, StoreError};
use std::sync::{Arc, RwLock};

/// The document kind roles are stored under (`BackOfficeStore`).
pub const ROLE_DOCS: &str = "role";
/// What `Bus::invalidate` names when a role changes.
pub const ROLES_CHANGED: &str = "roles";

/// The role table of this node, kept in memory; `reload` after any change (every node does it
/// on `ROLES_CHANGED`).
#[derive(Clone)]
pub struct Roles {
    table: Arc<RwLock<Arc<RoleTable>>>,
}

impl Roles {
    /// Loads the stored roles, first storing the built-in ones that are missing (a fresh store)
    /// and giving stored built-in roles the permissions this release added to them (a data
    /// directory from an older release), except those the hospital took away.
    pub async fn load(store: &dyn DataStore) -> Result<Self, StoreError> {
        let roles = Self { table: Arc::new(RwLock::new(Arc::new(RoleTable::default()))) };
        let docs: Docs<'_, RoleDef> = Docs::new(store, ROLE_DOCS);
        let stored = docs.list().await?;
        for b in builtin_roles() {
            // Another node seeding or upgrading at the same moment wins just as well.
            match stored.iter().find(|r| r.value.name == b.name) {
                None => {
                    docs.put(b.name.as_str(), &b, 0).await?;
                }
                Some(s) => {
                    if let Some(up) = s.value.with_new_defaults() {
                        tracing::info!(role = %b.name.as_str(), "built-in role given this release's new permissions");
                        docs.put(b.name.as_str(), &up, s.version).await?;
                    }
                }
            }
        }
        roles.reload(store).await?;
        Ok(roles)
    }

    /// Re-reads the role table from the store.
    pub async fn reload(&self, store: &dyn DataStore) -> Result<(), StoreError> {
        let docs: Docs<'_, RoleDef> = Docs::new(store, ROLE_DOCS);
        let mut list: Vec<RoleDef> = docs.list().await?.into_iter().map(|v| v.value).collect();
        // admin holds everything whatever its row says.
        for r in list.iter_mut().filter(|r| r.name.is_admin()) {
            r.permissions = Permission::ALL.iter().copied().filter(|p| *p != Permission::StaffSelf).collect();
        }
        *self.table.write().expect("role table") = Arc::new(RoleTable::new(list));
        Ok(())
    }

    pub fn table(&self) -> Arc<RoleTable> {
        self.table.read().expect("role table").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory from an older release: its stored agent role lacks a permission this
    /// release gives agents; loading the roles adds it, once, and keeps what an administrator
    /// took from another built-in role.
    #[tokio::test]
    async fn loading_upgrades_stored_built_in_roles() {
        use hospital_domain::access::RoleName;
        let dir = tempfile::tempdir().unwrap();
        let store = hospital_store::embedded::EmbeddedStore::open(dir.path()).unwrap();
        let docs: Docs<'_, RoleDef> = Docs::new(&store, ROLE_DOCS);
        let old = r#"{"name":"agent","label":"客服","permissions":["patients.read","chat.agent"],"builtin":true}"#;
        assert!(docs.put("agent", &serde_json::from_str::<RoleDef>(old).unwrap(), 0).await.unwrap());
        let mut finance = builtin_roles().into_iter().find(|r| r.name.as_str() == "finance").unwrap();
        finance.permissions.remove(&Permission::PaymentsRefund);
        finance.note_withheld();
        assert!(docs.put("finance", &finance, 0).await.unwrap());

        let table = Roles::load(&store).await.unwrap().table();
        let r = |s: &str| [RoleName::parse(s).unwrap()];
        assert!(table.allows(&r("agent"), Permission::ChatFeedback), "the new default is given");
        assert!(!table.allows(&r("finance"), Permission::PaymentsRefund), "a withdrawal is kept");
        assert!(table.allows(&r("finance"), Permission::PaymentsRead));
        let version = docs.get("agent").await.unwrap().unwrap().version;
        Roles::load(&store).await.unwrap();
        assert_eq!(docs.get("agent").await.unwrap().unwrap().version, version, "upgraded once");
    }
}
