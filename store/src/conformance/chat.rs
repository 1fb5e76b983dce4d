//! Customer-service chat: conversations with their messages (across message buckets), read
//! marks, listings by account, agent and group (kept as the conversation's state changes),
//! ratings, dispatchers' state, groups, agents, tickets, the FAQ, canned replies and feedback.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::chat::canned::{CannedReply, CannedScope};
use hospital_domain::chat::conversation::{Closer, Conversation, MessageBody, Rating, Reader, Sender};
use hospital_domain::chat::dispatcher::{Arrival, Dispatcher, Presence};
use hospital_domain::chat::faq::FaqEntry;
use hospital_domain::chat::feedback::{month_of, Feedback};
use hospital_domain::chat::presence::{DispatcherState, PresenceBoard};
use hospital_domain::chat::service_hours::ServiceHours;
use hospital_domain::chat::ticket::Ticket;
use hospital_domain::chat::{AgentProfile, AgentRef, GroupCode, ServiceGroup};
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::*;
use std::sync::Arc;

use crate::chat::{conversation_with_marks, ChatWrite, ConversationRow, MESSAGES_PER_BUCKET};
use crate::traits::DataStore;
use crate::PendingEvent;

/// A group code unique to this run, so suites can share one backend.
pub(super) fn group(tag: &str) -> GroupCode {
    let u = uuid::Uuid::new_v4().simple().to_string();
    GroupCode::parse(&format!("{tag}-{}", &u[..12])).unwrap()
}

fn row(c: &Conversation, listed: bool) -> ConversationRow {
    ConversationRow { conversation: c.clone(), listed, left_groups: vec![] }
}

/// Conversations: a conversation and its messages in one write, read back in order from any
/// point (across a partition boundary of 500), read marks kept apart and applied on read, the
/// listings following its state (open by group in arrival order, gone when it moves or closes;
/// by account and by agent newest first; its rating), events in the outbox with the change.
pub async fn chat(store: Arc<dyn DataStore>) {
    let t0 = Utc::now();
    let (booking, billing) = (group("booking"), group("billing"));
    let account = AccountId::new();
    let agent = AgentRef { id: StaffId::new(), name: "客服小王".into() };
    let other_agent = AgentRef { id: StaffId::new(), name: "客服小李".into() };
    assert_eq!(store.conversation(ConversationId::new()).await.unwrap(), None);

    // Opened with its first message and its event, in one write.
    let mut first = Conversation::open(ConversationId::new(), account, "李雷", booking.clone(), t0).unwrap();
    let hello = first.append(Sender::Patient, MessageBody::text("你好").unwrap(), t0).unwrap();
    let event = PendingEvent::new(account, PersonalEvent::ChatMessage(hello.clone()));
    let w = ChatWrite {
        conversations: vec![row(&first, true)],
        messages: vec![hello.clone()],
        events: vec![event.clone()],
        ..Default::default()
    };
    store.apply_chat(w).await.unwrap();
    assert_eq!(store.conversation(first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.chat_messages(first.id, 0, 10).await.unwrap(), vec![hello.clone()]);
    assert!(store.outbox_pending(100_000).await.unwrap().contains(&event), "its event waits in the outbox");
    store.outbox_remove(&[event.id]).await.unwrap();
    assert_eq!(store.open_conversations_of_group(&booking).await.unwrap(), vec![first.clone()]);

    // A second, later conversation of the same account, in the same group.
    let mut second =
        Conversation::open(ConversationId::new(), account, "李雷", booking.clone(), t0 + ChronoDuration::seconds(1))
            .unwrap();
    store.apply_chat(ChatWrite { conversations: vec![row(&second, true)], ..Default::default() }).await.unwrap();
    let open: Vec<ConversationId> =
        store.open_conversations_of_group(&booking).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(open, vec![first.id, second.id], "arrival order");
    let mine: Vec<ConversationId> =
        store.conversations_of_account(account, 10).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(mine, vec![second.id, first.id], "newest first");
    assert_eq!(store.conversations_of_account(account, 1).await.unwrap().len(), 1, "limit");
    assert!(store.conversations_of_account(AccountId::new(), 10).await.unwrap().is_empty());

    // Assigned; then many messages, across a partition boundary, each write carrying the row
    // without its listings (they keep the state of the last change).
    first.assign(agent.clone(), t0).unwrap();
    store.apply_chat(ChatWrite { conversations: vec![row(&first, true)], ..Default::default() }).await.unwrap();
    let month = hospital_domain::chat::feedback::month_of(first.created_at);
    let served = store.conversations_of_agent(agent.id, month, 10).await.unwrap();
    assert_eq!(served.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first.id]);
    let total = MESSAGES_PER_BUCKET as usize + 41;
    let mut all = vec![hello.clone()];
    let mut batch = ChatWrite::default();
    for i in 2..=total {
        let sender =
            if i % 2 == 0 { Sender::Agent { id: agent.id, name: agent.name.clone() } } else { Sender::Patient };
        let m = first.append(sender, MessageBody::text(&format!("第{i}条")).unwrap(), t0).unwrap();
        all.push(m.clone());
        batch.merge(ChatWrite { conversations: vec![row(&first, false)], messages: vec![m], ..Default::default() });
        if i % 100 == 0 || i == total {
            store.apply_chat(std::mem::take(&mut batch)).await.unwrap();
        }
    }
    assert_eq!(store.conversation(first.id).await.unwrap().unwrap().last_seq, total as u64);
    assert_eq!(store.chat_messages(first.id, 0, 100_000).await.unwrap(), all, "every message in order");
    let from = MESSAGES_PER_BUCKET as usize - 3;
    assert_eq!(store.chat_messages(first.id, from as u64, 10).await.unwrap(), all[from..from + 10].to_vec());
    assert_eq!(store.chat_messages(first.id, total as u64, 10).await.unwrap(), vec![]);
    assert_eq!(store.chat_messages(second.id, 0, 10).await.unwrap(), vec![], "another conversation's are apart");
    let listed = store.open_conversations_of_group(&booking).await.unwrap();
    assert_eq!(listed[0].last_seq, 1, "listings keep the state of the last change of state");

    // Read marks: stored apart, applied on read. The last message is the patient's (`total` is
    // odd), so the row says the agent read up to the one before; their mark says all.
    assert_eq!(first.mark_read(Reader::Patient, total as u64, t0).unwrap(), None, "writing marks read");
    let mark = first.mark_read(Reader::Agent { id: agent.id }, total as u64, t0).unwrap().expect("a new mark");
    let stored = store.conversation(first.id).await.unwrap().unwrap();
    assert_eq!(stored.agent_read[&agent.id], total as u64 - 1);
    store.apply_chat(ChatWrite { read_marks: vec![mark], ..Default::default() }).await.unwrap();
    let back = conversation_with_marks(store.as_ref(), first.id).await.unwrap().unwrap();
    assert_eq!((back.patient_read, back.agent_read[&agent.id]), (total as u64, total as u64));
    assert_eq!(store.chat_read_marks(first.id).await.unwrap(), vec![mark]);

    // Transferred to another group: it leaves the first group's open list for the second's.
    second.transfer_to_group(billing.clone()).unwrap();
    let moved = ConversationRow { conversation: second.clone(), listed: true, left_groups: vec![booking.clone()] };
    store.apply_chat(ChatWrite { conversations: vec![moved], ..Default::default() }).await.unwrap();
    let open: Vec<ConversationId> =
        store.open_conversations_of_group(&booking).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(open, vec![first.id]);
    assert_eq!(store.open_conversations_of_group(&billing).await.unwrap(), vec![second.clone()]);

    // Transferred to another agent, closed, rated: off the open list, listed for both agents,
    // its rating listed for the month.
    first.transfer_to_agent(other_agent.clone(), t0).unwrap();
    first.close(Closer::Agent { id: other_agent.id }, t0).unwrap();
    first.rate(Rating::new(5, Some("很耐心"), t0).unwrap()).unwrap();
    store.apply_chat(ChatWrite { conversations: vec![row(&first, true)], ..Default::default() }).await.unwrap();
    assert!(store.open_conversations_of_group(&booking).await.unwrap().is_empty(), "closed: no longer open");
    for a in [agent.id, other_agent.id] {
        let listed = store.conversations_of_agent(a, month, 10).await.unwrap();
        assert_eq!(listed.iter().map(|c| c.status).collect::<Vec<_>>(), vec![first.status], "{a}");
    }
    let ratings = store.ratings_of_month(month, 1000).await.unwrap();
    let rated = ratings.iter().find(|r| r.conversation_id == first.id).expect("the rating is listed");
    assert_eq!((rated.score, rated.agent.id, rated.comment.as_deref()), (5, other_agent.id, Some("很耐心")));

    // A dispatcher's state reads back whole.
    assert_eq!(store.dispatcher_state(&billing).await.unwrap(), None);
    let mut d = Dispatcher::new(billing.clone());
    d.register_agent(agent.id, &agent.name).unwrap();
    d.set_presence(agent.id, Presence::Online, t0).unwrap();
    d.arrive(Arrival::of(&second), t0).unwrap();
    let mut board = PresenceBoard::default();
    board.set(agent.id, uuid::Uuid::now_v7(), Presence::Online, t0);
    let state = DispatcherState { dispatcher: d, board };
    store.apply_chat(ChatWrite { dispatchers: vec![state.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(store.dispatcher_state(&billing).await.unwrap(), Some(state));
}

/// The chat's reference data and what patients leave: service groups, agents and their groups,
/// tickets (listed open for their group until answered; the answer in the message centre),
/// the FAQ, canned replies by scope, feedback by month.
pub async fn chat_reference(store: Arc<dyn DataStore>) {
    let t0 = Utc::now();
    let (g1, g2) = (group("reports"), group("billing"));

    let sg = ServiceGroup { code: g1.clone(), name: "报告咨询".into(), hours: ServiceHours::always() };
    store.put_chat_group(&sg).await.unwrap();
    assert!(store.chat_groups().await.unwrap().contains(&sg));
    let renamed = ServiceGroup { name: "报告解读".into(), ..sg.clone() };
    store.put_chat_group(&renamed).await.unwrap();
    let groups = store.chat_groups().await.unwrap();
    assert!(groups.contains(&renamed) && !groups.contains(&sg), "replaced");

    // Agents: in their groups' listings; moving groups moves them.
    let a = AgentProfile::new(StaffId::new(), "客服小王", vec![g1.clone(), g2.clone()], 4).unwrap();
    store.put_chat_agent(&a).await.unwrap();
    assert_eq!(store.chat_agent(a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.chat_agents_of_group(&g1).await.unwrap(), vec![a.clone()]);
    let moved = AgentProfile::new(a.id, "客服小王", vec![g2.clone()], 6).unwrap();
    store.put_chat_agent(&moved).await.unwrap();
    assert!(store.chat_agents_of_group(&g1).await.unwrap().is_empty(), "left the group");
    assert_eq!(store.chat_agents_of_group(&g2).await.unwrap(), vec![moved.clone()]);
    assert_eq!(store.chat_agent(StaffId::new()).await.unwrap(), None);

    // Tickets.
    let account = AccountId::new();
    let mut t = Ticket::leave(TicketId::new(), account, "韩梅梅", g1.clone(), "报告怎么看？", vec![], t0).unwrap();
    let later = Ticket::leave(TicketId::new(), account, "韩梅梅", g1.clone(), "还有一个问题", vec![], t0).unwrap();
    store.apply_chat(ChatWrite { tickets: vec![t.clone(), later.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(store.ticket(t.id).await.unwrap().as_ref(), Some(&t));
    assert_eq!(store.open_tickets_of_group(&g1).await.unwrap(), vec![t.clone(), later.clone()], "oldest first");
    t.answer(AgentRef { id: a.id, name: a.name.clone() }, "请在报告页查看解读。", t0).unwrap();
    let answer = Message::new(account, MessageKind::SystemNotice, "客服回复", "请在报告页查看解读。", None, t0);
    let w = ChatWrite { tickets: vec![t.clone()], inbox: vec![answer.clone()], ..Default::default() };
    store.apply_chat(w).await.unwrap();
    assert_eq!(store.open_tickets_of_group(&g1).await.unwrap(), vec![later.clone()], "answered: not open");
    assert_eq!(store.tickets_of_account(account, 10).await.unwrap(), vec![later.clone(), t.clone()]);
    assert_eq!(store.messages_of(account, 10).await.unwrap(), vec![answer], "the answer is in the message centre");

    // The FAQ.
    let q = FaqEntry::new(FaqId::new(), Some(g1.clone()), "报告多久能出？", "一般两小时。", &["报告"]).unwrap();
    store.put_faq(&q).await.unwrap();
    assert!(store.faq_entries().await.unwrap().contains(&q));
    let edited = FaqEntry { answer: "检验两小时，影像一天。".into(), ..q.clone() };
    store.put_faq(&edited).await.unwrap();
    let entries = store.faq_entries().await.unwrap();
    assert!(entries.contains(&edited) && !entries.contains(&q));
    assert!(store.delete_faq(q.id).await.unwrap());
    assert!(!store.delete_faq(q.id).await.unwrap(), "already gone");
    assert!(!store.faq_entries().await.unwrap().iter().any(|e| e.id == q.id));

    // Canned replies.
    let gs = CannedScope::Group { group: g1.clone() };
    let mine = CannedScope::Agent { agent: a.id };
    let r1 = CannedReply::new(CannedReplyId::new(), gs.clone(), "问候", "{patient_name}您好").unwrap();
    let r2 = CannedReply::new(CannedReplyId::new(), gs.clone(), "结束", "感谢您的咨询").unwrap();
    store.put_canned_reply(&r1).await.unwrap();
    store.put_canned_reply(&r2).await.unwrap();
    assert_eq!(store.canned_replies(&gs).await.unwrap(), vec![r1.clone(), r2.clone()], "creation order");
    let own = CannedReply { scope: mine.clone(), ..r1.clone() };
    store.put_canned_reply(&own).await.unwrap();
    assert_eq!(store.canned_replies(&gs).await.unwrap(), vec![r2.clone()], "moved out of the group's");
    assert_eq!(store.canned_replies(&mine).await.unwrap(), vec![own.clone()]);
    assert_eq!(store.canned_reply(r1.id).await.unwrap(), Some(own));
    assert!(store.delete_canned_reply(r1.id).await.unwrap());
    assert!(!store.delete_canned_reply(r1.id).await.unwrap());
    assert!(store.canned_replies(&mine).await.unwrap().is_empty());
    assert_eq!(store.canned_reply(r1.id).await.unwrap(), None);

    // Feedback, newest first in its month.
    let f1 = Feedback::new(FeedbackId::new(), account, "挂号页面太慢", None, vec![], t0).unwrap();
    let f2 = Feedback::new(FeedbackId::new(), account, "希望增加夜间客服", Some("13800138000"), vec![], t0).unwrap();
    store.put_feedback(&f1).await.unwrap();
    store.put_feedback(&f2).await.unwrap();
    let listed = store.feedback_of_month(month_of(t0), 100_000).await.unwrap();
    let ours: Vec<&Feedback> = listed.iter().filter(|f| f.account_id == account).collect();
    assert_eq!(ours, vec![&f2, &f1]);
}
