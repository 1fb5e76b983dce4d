//! The customer-service FAQ (常见问题, CS-4): questions with their answers, keywords and group,
//! searched as the catalogue is (Chinese fragments, pinyin initials, abbreviations: the same
//! `SearchKey`), and suggested to a patient from their first message, before and while they wait.
//!
//! Suggesting is not searching: a first message is a sentence ("请问报告什么时候能出来？"), not a
//! query, so entries are ranked by how much of them the message mentions: each keyword found in
//! the message counts 3 plus its length (a longer keyword is more telling), and each two-character
//! piece of the question found in the message counts 1, except pieces of words every question
//! has (什么, 怎么, 请问, ...). An entry needs 2 to be suggested: a keyword, or two pieces.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use super::GroupCode;
use crate::search::SearchKey;
use crate::text::{parse_text, Lines};
use crate::{FaqId, ValidationError};

pub const MAX_QUESTION_CHARS: usize = 200;
pub const MAX_ANSWER_CHARS: usize = 4000;
pub const MAX_KEYWORD_CHARS: usize = 20;
pub const MAX_KEYWORDS: usize = 20;
/// The least score a suggestion needs.
const MIN_SUGGESTION_SCORE: u32 = 2;

/// Two-character pieces that say nothing about the topic.
const STOP_PIECES: [&str; 24] = [
    "什么", "么时", "时候", "怎么", "么办", "么样", "请问", "问一", "一下", "我想", "想问", "可以", "能不", "不能",
    "是不", "不是", "有没", "没有", "如何", "为什", "哪里", "需要", "我的", "你们",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaqEntry {
    pub id: FaqId,
    /// The group it belongs to; None for every group.
    pub group: Option<GroupCode>,
    pub question: String,
    pub answer: String,
    /// Words a patient may use for it that the question does not (出报告, 取报告 for 报告).
    pub keywords: Vec<String>,
}

impl FaqEntry {
    pub fn new(
        id: FaqId,
        group: Option<GroupCode>,
        question: &str,
        answer: &str,
        keywords: &[&str],
    ) -> Result<Self, ValidationError> {
        if keywords.len() > MAX_KEYWORDS {
            return Err(ValidationError::new("keywords", format!("at most {MAX_KEYWORDS}")));
        }
        Ok(Self {
            id,
            group,
            question: parse_text("question", question, MAX_QUESTION_CHARS, Lines::Single)?,
            answer: parse_text("answer", answer, MAX_ANSWER_CHARS, Lines::Multi)?,
            keywords: keywords
                .iter()
                .map(|k| parse_text("keywords", k, MAX_KEYWORD_CHARS, Lines::Single).map(|k| k.to_lowercase()))
                .collect::<Result<_, _>>()?,
        })
    }

    fn in_group(&self, group: Option<&GroupCode>) -> bool {
        match (group, &self.group) {
            (Some(g), Some(own)) => g == own,
            _ => true,
        }
    }
}

/// The pieces of two characters of a text's letters, digits and Chinese characters, lower-cased.
fn pieces(s: &str) -> HashSet<String> {
    let chars: Vec<char> = s.to_lowercase().chars().collect();
    chars
        .windows(2)
        .filter(|w| w.iter().all(|c| c.is_alphanumeric()))
        .map(|w| w.iter().collect::<String>())
        .filter(|p| !STOP_PIECES.contains(&p.as_str()))
        .collect()
}

/// The FAQ with its search keys built once.
#[derive(Debug, Clone, Default)]
pub struct Faq {
    entries: Vec<(FaqEntry, SearchKey, HashSet<String>)>,
}

impl Faq {
    /// In the order given, which breaks ties in search and suggestions.
    pub fn new(entries: Vec<FaqEntry>) -> Self {
        let entries = entries
            .into_iter()
            .map(|e| {
                let key =
                    SearchKey::new(std::iter::once(e.question.as_str()).chain(e.keywords.iter().map(String::as_str)));
                let pieces = pieces(&e.question);
                (e, key, pieces)
            })
            .collect();
        Self { entries }
    }

    pub fn entries(&self) -> impl Iterator<Item = &FaqEntry> {
        self.entries.iter().map(|(e, _, _)| e)
    }

    /// Entries matching `query` (Chinese fragment, pinyin initials, abbreviation of the
    /// question), best first, of `group` and of every group.
    pub fn search(&self, query: &str, group: Option<&GroupCode>, limit: usize) -> Vec<&FaqEntry> {
        let mut hits: Vec<(u32, usize, &FaqEntry)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (e, _, _))| e.in_group(group))
            .map(|(i, (e, key, _))| (key.score(query), i, e))
            .filter(|(score, _, _)| *score > 0)
            .collect();
        hits.sort_by_key(|(score, i, _)| (std::cmp::Reverse(*score), *i));
        hits.into_iter().take(limit).map(|(_, _, e)| e).collect()
    }

    /// Entries worth suggesting to a patient who wrote `message` (see the module's ranking).
    pub fn suggest(&self, message: &str, group: Option<&GroupCode>, limit: usize) -> Vec<&FaqEntry> {
        let lower = message.to_lowercase();
        let said = pieces(&lower);
        let mut hits: Vec<(u32, usize, &FaqEntry)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (e, _, _))| e.in_group(group))
            .map(|(i, (e, _, question))| {
                let keywords: u32 = e
                    .keywords
                    .iter()
                    .filter(|k| lower.contains(k.as_str()))
                    .map(|k| 3 + k.chars().count() as u32)
                    .sum();
                let shared = question.intersection(&said).count() as u32;
                (keywords + shared, i, e)
            })
            .filter(|(score, _, _)| *score >= MIN_SUGGESTION_SCORE)
            .collect();
        hits.sort_by_key(|(score, i, _)| (std::cmp::Reverse(*score), *i));
        hits.into_iter().take(limit).map(|(_, _, e)| e).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faq() -> Faq {
        let g = |c: &str| Some(GroupCode::parse(c).unwrap());
        let e = |group, q: &str, a: &str, k: &[&str]| FaqEntry::new(FaqId::new(), group, q, a, k).unwrap();
        Faq::new(vec![
            e(
                g("reports"),
                "检查报告什么时候能出来？",
                "一般检验 2 小时，影像 24 小时。",
                &["报告", "出报告", "取报告"],
            ),
            e(g("booking"), "如何取消预约？", "在“我的预约”中点取消。", &["退号", "取消"]),
            e(g("billing"), "医保怎么结算？", "绑定医保电子凭证后自动结算。", &["医保", "报销"]),
            e(None, "医院几点上班？", "门诊 8:00 开始。", &["上班", "营业时间"]),
        ])
    }

    fn questions(v: Vec<&FaqEntry>) -> Vec<&str> {
        v.into_iter().map(|e| e.question.as_str()).collect()
    }

    #[test]
    fn search_like_the_catalogue() {
        let f = faq();
        assert_eq!(questions(f.search("取消", None, 5)), vec!["如何取消预约？"]);
        assert_eq!(questions(f.search("ybzmjs", None, 5)), vec!["医保怎么结算？"], "pinyin initials");
        assert_eq!(questions(f.search("退号", None, 5)), vec!["如何取消预约？"], "by keyword");
        assert_eq!(questions(f.search("医保结算", None, 5)), vec!["医保怎么结算？"], "abbreviation");
        // Within a group: that group's and the shared ones.
        assert_eq!(questions(f.search("上班", GroupCode::parse("booking").ok().as_ref(), 5)), vec!["医院几点上班？"]);
        assert!(f.search("医保", GroupCode::parse("booking").ok().as_ref(), 5).is_empty());
        assert!(f.search("", None, 5).is_empty());
        assert_eq!(f.search("医", None, 1).len(), 1, "limit");
    }

    #[test]
    fn suggest_from_a_first_message() {
        let f = faq();
        assert_eq!(
            questions(f.suggest("你好，我想问一下我的报告什么时候能出来", None, 3))[0],
            "检查报告什么时候能出来？"
        );
        assert_eq!(questions(f.suggest("挂错号了想退号", None, 3)), vec!["如何取消预约？"]);
        assert_eq!(questions(f.suggest("医保能报销多少", None, 3)), vec!["医保怎么结算？"]);
        // Only words every question has: nothing to suggest.
        assert!(f.suggest("请问什么时候可以", None, 3).is_empty());
        assert!(f.suggest("你好", None, 3).is_empty());
        // The group narrows suggestions.
        assert!(f.suggest("报告出来了吗", GroupCode::parse("billing").ok().as_ref(), 3).is_empty());
    }

    #[test]
    fn entries_are_checked() {
        assert!(FaqEntry::new(FaqId::new(), None, "", "a", &[]).is_err());
        assert!(FaqEntry::new(FaqId::new(), None, "q", "a", &["两\n行"]).is_err());
        assert!(FaqEntry::new(FaqId::new(), None, "q", "a", &["k"; MAX_KEYWORDS + 1]).is_err());
        let e = FaqEntry::new(FaqId::new(), None, "q", "第一行\n第二行", &["CT"]).unwrap();
        assert_eq!(e.keywords, vec!["ct"], "keywords are matched lower-cased");
    }
}
