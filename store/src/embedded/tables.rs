//! The embedded store's tables: one table per table of `schema.cql`, with the same primary keys
//! (encoded by `keys::Key`) and the same TTLs. Values are JSON with an 8-byte expiry header.

/// A table: its name, which prefixes its rows' keys in the engine (and names it on disk, so a
/// table is never renamed without moving its rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def(&'static str);

impl Def {
    pub const fn name(self) -> &'static str {
        self.0
    }
}

macro_rules! tables {
    ($($(#[$m:meta])* $name:ident = $s:literal;)*) => {
        $($(#[$m])* pub const $name: Def = Def($s);)*
        /// Every table, created at open so that readers never meet a missing one.
        pub const ALL: &[Def] = &[$($name),*];
    };
}

tables! {
    ACCOUNTS = "accounts";
    ACCOUNTS_BY_PHONE = "accounts_by_phone";
    ACCOUNTS_BY_EMAIL = "accounts_by_email";
    ACCOUNTS_BY_OPENID = "accounts_by_openid";
    PATIENTS_BY_ACCOUNT = "patients_by_account";
    ACCOUNTS_BY_PERSON = "accounts_by_person";
    REAL_NAME_CHECKS = "real_name_checks";
    STAFF = "staff";
    STAFF_BY_USERNAME = "staff_by_username";
    HOSPITAL = "hospital";
    DEPARTMENTS = "departments";
    DOCTORS = "doctors";
    DOCTORS_BY_DEPARTMENT = "doctors_by_department";
    CLINIC_SESSIONS = "clinic_sessions";
    CLINIC_SESSIONS_BY_DOCTOR = "clinic_sessions_by_doctor";
    APPOINTMENTS = "appointments";
    APPOINTMENTS_BY_DOCTOR = "appointments_by_doctor";
    APPOINTMENTS_BY_ACCOUNT = "appointments_by_account";
    APPOINTMENTS_BY_PERSON = "appointments_by_person";
    WAITLISTS_BY_DOCTOR = "waitlists_by_doctor";
    ORDERS = "orders";
    MESSAGES_BY_ACCOUNT = "messages_by_account";
    KV_ENTRIES = "kv_entries";
    KV_SET_MEMBERS = "kv_set_members";
    EXAMS = "exams";
    EXAMS_BY_ACCOUNT = "exams_by_account";
    QUEUES = "queues";
    NOTIFICATION_PREFERENCES = "notification_preferences";
    REMINDERS = "reminders";
    REMINDERS_DUE = "reminders_due";
    OUTBOUND = "outbound";
    OUTBOUND_DUE = "outbound_due";
    LIVE_OUTBOX = "live_outbox";
    AUDIT_LOG = "audit_log";
    AUDIT_HEADS = "audit_heads";
    AUDIT_BY_TIME = "audit_by_time";
    AUDIT_BY_ACTOR = "audit_by_actor";
    AUDIT_BY_ACTION = "audit_by_action";
    AUDIT_BY_ACCOUNT = "audit_by_account";
    BACKOFFICE_DOCUMENTS = "backoffice_documents";
    ANALYTICS_DAILY = "analytics_daily";
    FEE_ITEMS = "fee_items";
    FEE_ITEMS_BY_PATIENT = "fee_items_by_patient";
    ORDERS_BY_ACCOUNT = "orders_by_account";
    OPEN_ORDERS = "open_orders";
    LEDGER_MOVEMENTS = "ledger_movements";
    LEDGER_BY_DAY = "ledger_by_day";
    /// Keyed by (time, key), which listed two movements of one millisecond in key order: no
    /// longer written; `ledger_by_account_seq` replaced it.
    LEDGER_BY_ACCOUNT = "ledger_by_account";
    BALANCES = "balances";
    /// The `version` column of `balances`: how many movements the balance has had, the `seq`
    /// of its newest entry in `ledger_by_account_seq`.
    BALANCE_VERSIONS = "balance_versions";
    LEDGER_BY_ACCOUNT_SEQ = "ledger_by_account_seq";
    INSURANCE_BINDINGS = "insurance_bindings";
    CHAT_GROUPS = "chat_groups";
    CHAT_AGENTS = "chat_agents";
    CHAT_AGENTS_BY_GROUP = "chat_agents_by_group";
    CONVERSATIONS = "conversations";
    CHAT_MESSAGES = "chat_messages";
    CONVERSATIONS_BY_ACCOUNT = "conversations_by_account";
    CONVERSATIONS_BY_AGENT = "conversations_by_agent";
    OPEN_CONVERSATIONS_BY_GROUP = "open_conversations_by_group";
    CHAT_READ_MARKS = "chat_read_marks";
    CHAT_RATINGS = "chat_ratings";
    CHAT_DISPATCHERS = "chat_dispatchers";
    CHAT_TICKETS = "chat_tickets";
    TICKETS_BY_ACCOUNT = "tickets_by_account";
    OPEN_TICKETS_BY_GROUP = "open_tickets_by_group";
    CHAT_FAQ = "chat_faq";
    CHAT_CANNED_REPLIES = "chat_canned_replies";
    CHAT_CANNED_BY_ID = "chat_canned_by_id";
    CHAT_FEEDBACK = "chat_feedback";
    VISITS = "visits";
    VISITS_BY_PATIENT = "visits_by_patient";
    APPOINTMENT_NOTES = "appointment_notes";
    REPORTS = "reports";
    REPORTS_BY_PATIENT = "reports_by_patient";
    SHARES = "shares";
    SHARES_BY_PATIENT = "shares_by_patient";
    EXTERNAL_REFS = "external_refs";
    POLICY_VERSIONS = "policy_versions";
    CONSENTS = "consents";
    DELETION_REQUESTS = "deletion_requests";
    JOBS = "jobs";
    JOBS_DUE = "jobs_due";
    /// Used only by a store opened as a key vault (`vault_dir`), never by the data store.
    DATA_KEYS = "data_keys";
    /// The newest fencing token seen per resource (`lease`): older ones are refused.
    FENCES = "fences";
    /// Not a CQL table: the embedded engine's own index of rows with a TTL, by expiry time, which
    /// the sweeper walks to delete what has expired (ScyllaDB does this itself).
    TTL_INDEX = "_ttl_index";
}
