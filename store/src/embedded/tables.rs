//! The embedded store's tables: one table per table of `schema.cql`, with the same primary keys
//! (encoded by `keys::Key`) and the same TTLs. Values are JSON with an 8-byte expiry header.

/// A table: its name (as in `schema.cql`) and its id, the byte that begins every key of its rows
/// in the engine.
///
/// The id is stored in every key on disk: a table keeps its id for ever, a new table takes the
/// next unused one, and an id is never reused (one byte: up to 255 tables). One byte rather than
/// the name because the LSM's memtable compares keys by a 4-byte inline prefix before it
/// dereferences the rest: with a byte of table and three of key, most comparisons end there,
/// where names shared by many tables ("appointments_by_...") sent every one to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def(&'static str, u8);

impl Def {
    pub const fn name(self) -> &'static str {
        self.0
    }
    pub const fn id(self) -> u8 {
        self.1
    }
}

macro_rules! tables {
    ($($(#[$m:meta])* $name:ident = $s:literal, $id:literal;)*) => {
        $($(#[$m])* pub const $name: Def = Def($s, $id);)*
        /// Every table, created at open so that readers never meet a missing one.
        pub const ALL: &[Def] = &[$($name),*];
    };
}

tables! {
    ACCOUNTS = "accounts", 1;
    ACCOUNTS_BY_PHONE = "accounts_by_phone", 2;
    ACCOUNTS_BY_EMAIL = "accounts_by_email", 3;
    ACCOUNTS_BY_OPENID = "accounts_by_openid", 4;
    PATIENTS_BY_ACCOUNT = "patients_by_account", 5;
    ACCOUNTS_BY_PERSON = "accounts_by_person", 6;
    REAL_NAME_CHECKS = "real_name_checks", 7;
    STAFF = "staff", 8;
    STAFF_BY_USERNAME = "staff_by_username", 9;
    HOSPITAL = "hospital", 10;
    DEPARTMENTS = "departments", 11;
    DOCTORS = "doctors", 12;
    DOCTORS_BY_DEPARTMENT = "doctors_by_department", 13;
    CLINIC_SESSIONS = "clinic_sessions", 14;
    CLINIC_SESSIONS_BY_DOCTOR = "clinic_sessions_by_doctor", 15;
    APPOINTMENTS = "appointments", 16;
    APPOINTMENTS_BY_DOCTOR = "appointments_by_doctor", 17;
    APPOINTMENTS_BY_ACCOUNT = "appointments_by_account", 18;
    APPOINTMENTS_BY_PERSON = "appointments_by_person", 19;
    WAITLISTS_BY_DOCTOR = "waitlists_by_doctor", 20;
    ORDERS = "orders", 21;
    MESSAGES_BY_ACCOUNT = "messages_by_account", 22;
    KV_ENTRIES = "kv_entries", 23;
    KV_SET_MEMBERS = "kv_set_members", 24;
    EXAMS = "exams", 25;
    EXAMS_BY_ACCOUNT = "exams_by_account", 26;
    QUEUES = "queues", 27;
    NOTIFICATION_PREFERENCES = "notification_preferences", 28;
    REMINDERS = "reminders", 29;
    REMINDERS_DUE = "reminders_due", 30;
    OUTBOUND = "outbound", 31;
    OUTBOUND_DUE = "outbound_due", 32;
    LIVE_OUTBOX = "live_outbox", 33;
    AUDIT_LOG = "audit_log", 34;
    AUDIT_HEADS = "audit_heads", 35;
    AUDIT_BY_TIME = "audit_by_time", 36;
    AUDIT_BY_ACTOR = "audit_by_actor", 37;
    AUDIT_BY_ACTION = "audit_by_action", 38;
    AUDIT_BY_ACCOUNT = "audit_by_account", 39;
    BACKOFFICE_DOCUMENTS = "backoffice_documents", 40;
    ANALYTICS_DAILY = "analytics_daily", 41;
    FEE_ITEMS = "fee_items", 42;
    FEE_ITEMS_BY_PATIENT = "fee_items_by_patient", 43;
    ORDERS_BY_ACCOUNT = "orders_by_account", 44;
    OPEN_ORDERS = "open_orders", 45;
    LEDGER_MOVEMENTS = "ledger_movements", 46;
    LEDGER_BY_DAY = "ledger_by_day", 47;
    /// Keyed by (time, key), which listed two movements of one millisecond in key order: no
    /// longer written; `ledger_by_account_seq` replaced it.
    LEDGER_BY_ACCOUNT = "ledger_by_account", 48;
    BALANCES = "balances", 49;
    /// The `version` column of `balances`: how many movements the balance has had, the `seq`
    /// of its newest entry in `ledger_by_account_seq`.
    BALANCE_VERSIONS = "balance_versions", 50;
    LEDGER_BY_ACCOUNT_SEQ = "ledger_by_account_seq", 51;
    INSURANCE_BINDINGS = "insurance_bindings", 52;
    CHAT_GROUPS = "chat_groups", 53;
    CHAT_AGENTS = "chat_agents", 54;
    CHAT_AGENTS_BY_GROUP = "chat_agents_by_group", 55;
    CONVERSATIONS = "conversations", 56;
    CHAT_MESSAGES = "chat_messages", 57;
    CONVERSATIONS_BY_ACCOUNT = "conversations_by_account", 58;
    CONVERSATIONS_BY_AGENT = "conversations_by_agent", 59;
    OPEN_CONVERSATIONS_BY_GROUP = "open_conversations_by_group", 60;
    CHAT_READ_MARKS = "chat_read_marks", 61;
    CHAT_RATINGS = "chat_ratings", 62;
    CHAT_DISPATCHERS = "chat_dispatchers", 63;
    CHAT_TICKETS = "chat_tickets", 64;
    TICKETS_BY_ACCOUNT = "tickets_by_account", 65;
    OPEN_TICKETS_BY_GROUP = "open_tickets_by_group", 66;
    CHAT_FAQ = "chat_faq", 67;
    CHAT_CANNED_REPLIES = "chat_canned_replies", 68;
    CHAT_CANNED_BY_ID = "chat_canned_by_id", 69;
    CHAT_FEEDBACK = "chat_feedback", 70;
    VISITS = "visits", 71;
    VISITS_BY_PATIENT = "visits_by_patient", 72;
    APPOINTMENT_NOTES = "appointment_notes", 73;
    REPORTS = "reports", 74;
    REPORTS_BY_PATIENT = "reports_by_patient", 75;
    SHARES = "shares", 76;
    SHARES_BY_PATIENT = "shares_by_patient", 77;
    EXTERNAL_REFS = "external_refs", 78;
    POLICY_VERSIONS = "policy_versions", 79;
    CONSENTS = "consents", 80;
    DELETION_REQUESTS = "deletion_requests", 81;
    JOBS = "jobs", 82;
    JOBS_DUE = "jobs_due", 83;
    /// Used only by a store opened as a key vault (`vault_dir`), never by the data store.
    DATA_KEYS = "data_keys", 84;
    /// The newest fencing token seen per resource (`lease`): older ones are refused.
    FENCES = "fences", 85;
    /// Not a CQL table: the embedded engine's own index of rows with a TTL, by expiry time, which
    /// the sweeper walks to delete what has expired (ScyllaDB does this itself).
    TTL_INDEX = "_ttl_index", 86;
}

/// The table with id `id`.
pub fn by_id(id: u8) -> Option<Def> {
    ALL.iter().copied().find(|t| t.id() == id)
}

/// How many bytes of an engine key name its table (`engine_key`).
pub(super) const TABLE_PREFIX: usize = 1;

/// The engine keeps every table in one LSM partition: a row's engine key is its table's id (one
/// byte, `Def`) and the row's key, so a table is a key range and a partition of a table
/// a prefix of it. One tree means one memtable, one journal and one set of segments to compact,
/// whatever the number of tables.
///
/// Made as the LSM's own byte string (inline up to 20 bytes, one allocation beyond), which the
/// write batch takes as it is: a `Vec` was copied again into one for every row written.
pub(super) fn engine_key(table: Def, key: &[u8]) -> fjall::Slice {
    fjall::Slice::fused(&[table.id()], key)
}

/// A row's entry in the TTL index (its key there; the value lists the other rows its closure
/// wrote with the same expiry, if any: `engine::push_listed`): the expiry, then the row's engine
/// key, so the sweeper walks entries in expiry order and reaches the rows without a lookup. Made
/// as the LSM's byte string, as `engine_key` is.
pub(super) fn ttl_index_key(expires_ms: u64, row: &[u8]) -> fjall::Slice {
    let mut head = [0u8; 9];
    head[0] = TTL_INDEX.id();
    head[1..].copy_from_slice(&expires_ms.to_be_bytes());
    fjall::Slice::fused(&head, row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_own_id_and_name() {
        let mut ids: Vec<u8> = ALL.iter().map(|t| t.id()).collect();
        let mut names: Vec<&str> = ALL.iter().map(|t| t.name()).collect();
        ids.sort();
        ids.dedup();
        names.sort();
        names.dedup();
        assert_eq!(ids.len(), ALL.len(), "a table id used twice");
        assert_eq!(names.len(), ALL.len(), "a table name used twice");
        assert!(ids[0] >= 1, "id 0 is kept free");
    }
}
