//! Search keys for what patients type into search boxes (INFO-4, CS-4): Chinese substrings, pinyin
//! initials and abbreviations. One key type for the catalogue (doctors, departments) and the
//! customer-service FAQ, so both answer a query the same way.

/// The lower-case pinyin initials of a Chinese string, `"心内科"` -> `"xnk"`. Letters and digits
/// pass through lower-cased; other characters are dropped.
pub fn pinyin_initials(s: &str) -> String {
    use pinyin::ToPinyin;
    s.chars()
        .filter_map(|c| match c.to_pinyin() {
            Some(p) => p.first_letter().chars().next(),
            None if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            None => None,
        })
        .collect()
}

/// What a search query is matched against: the text as written and its pinyin initials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchKey {
    text: String,
    initials: String,
    /// The first field (the name) and its initials, for abbreviation matches.
    name: String,
    name_initials: String,
}

impl SearchKey {
    /// Builds the key from several fields; the first is the name (a doctor's or department's name,
    /// an FAQ's question), which abbreviations are matched against.
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a str>) -> Self {
        let fields: Vec<&str> = fields.into_iter().collect();
        let text = fields.join("\u{1f}").to_lowercase();
        let initials = fields.iter().map(|f| pinyin_initials(f)).collect::<Vec<_>>().join("\u{1f}");
        let name = fields.first().map(|f| f.to_lowercase()).unwrap_or_default();
        let name_initials = pinyin_initials(&name);
        Self { text, initials, name, name_initials }
    }

    /// A match score: 0 for none; higher is better. Chinese text matches as a substring (no
    /// word breaks), an ASCII query also matches the pinyin initials ("xnk" finds 心内科). A
    /// query whose characters appear in order in the name is an abbreviation and matches too,
    /// ranked below any substring match: "心内" and "xnk" find 心血管内科.
    pub fn score(&self, query: &str) -> u32 {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return 0;
        }
        let mut score = 0;
        if let Some(pos) = self.text.find(&q) {
            // A match at the start of the first field (the name) ranks highest.
            score += if pos == 0 { 100 } else { 60 };
        }
        if q.chars().all(|c| c.is_ascii_alphanumeric()) {
            if let Some(pos) = self.initials.find(&q) {
                score += if pos == 0 { 80 } else { 40 };
            }
        }
        if score == 0 && q.chars().count() >= 2 {
            let ascii = q.chars().all(|c| c.is_ascii_alphanumeric());
            if is_subsequence(&q, &self.name) || (ascii && is_subsequence(&q, &self.name_initials)) {
                score = 20;
            }
        }
        score
    }
}

/// Whether every character of `needle` appears in `hay`, in order.
fn is_subsequence(needle: &str, hay: &str) -> bool {
    let mut hay = hay.chars();
    needle.chars().all(|c| hay.any(|h| h == c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_chinese() {
        assert_eq!(pinyin_initials("心内科"), "xnk");
        assert_eq!(pinyin_initials("张三丰"), "zsf");
        assert_eq!(pinyin_initials("CT室"), "cts");
    }

    #[test]
    fn search_by_fragment_and_initials() {
        let k = SearchKey::new(["王建国", "冠心病", "心内科"]);
        assert!(k.score("建国") > 0);
        assert!(k.score("冠心") > 0);
        assert!(k.score("wjg") > 0);
        assert!(k.score("WJG") > 0, "case-insensitive");
        assert!(k.score("xnk") > 0, "department initials");
        assert_eq!(k.score("李"), 0);
        assert_eq!(k.score("zz"), 0);
        assert!(k.score("王") > k.score("国"), "a prefix ranks higher");
        let dept = SearchKey::new(["心血管内科", "心血管内科是省级重点专科"]);
        assert!(dept.score("心内") > 0, "an abbreviation of the name");
        assert!(dept.score("xnk") > 0, "the abbreviation's initials");
        assert!(dept.score("心血管") > dept.score("心内"), "a substring ranks above an abbreviation");
        assert_eq!(dept.score("内心"), 0, "out of order");
        assert_eq!(dept.score("省科"), 0, "only the name is abbreviated, not the description");
    }
}
