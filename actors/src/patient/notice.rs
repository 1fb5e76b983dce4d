//! The notice to a person's own account when another account adds them as a patient.

use chrono::Utc;
use hospital_domain::account::Relation;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::AccountId;
use hospital_store::{PatientRecord, PersonHolder};

use crate::deps::Context;

fn relation_zh(r: Relation) -> &'static str {
    match r {
        Relation::Myself => "本人",
        Relation::Spouse => "配偶",
        Relation::Child => "子女",
        Relation::Parent => "父母",
        Relation::Other => "其他",
    }
}

/// How often the notice to the person's own account is tried before giving up (logged).
const NOTICE_ATTEMPTS: u32 = 3;

/// Tells the account holding the person's `self` record (if it is another account) that
/// this account added them: someone who knows a person's name and ID number could otherwise
/// use up their bookings unseen. The add stands whatever happens here; a failure is logged.
pub(super) async fn tell_own_account(ctx: &Context, adder: AccountId, record: &PatientRecord, others: &[PersonHolder]) {
    let Some(own) = others.iter().find(|h| h.relation == Relation::Myself) else { return };
    let message = Message::new(
        own.account_id,
        MessageKind::SystemNotice,
        "您已被其他账户添加为就诊人",
        format!(
            "另一个账户已将{}（身份证号 {}）添加为就诊人，关系：{}。该账户可以为您预约挂号。如非您本人或家人所为，请联系医院。",
            record.name,
            record.id_card_masked,
            relation_zh(record.relation)
        ),
        Some(own.patient_id.to_string()),
        Utc::now(),
    )
    .alert();
    // Written with its live event, so the other account's open app sees it at once.
    let events = vec![hospital_store::PendingEvent::message(&message)];
    for attempt in 1..=NOTICE_ATTEMPTS {
        match ctx.stores.data.put_message(&message, &events).await {
            Ok(()) => {
                ctx.events.durable(events);
                return;
            }
            Err(e) if attempt == NOTICE_ATTEMPTS => {
                tracing::error!(error = %e, account = %own.account_id, adder = %adder,
                    "could not tell a person's own account that another account added them");
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "writing the patient-added notice failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
    }
}
