//! The data statements' grammar, by recursive descent over tokens: enough of CQL for what the
//! backend writes, and a syntax error for the rest (never a silently ignored tail).

use super::{Assignment, Condition, Kind, Literal, Operator, Relation, Selector, Statement, Target, Term};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Int(i64),
    Uuid(uuid::Uuid),
    Text(String),
    Marker,
    Punct(&'static str),
}

fn tokens(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let uuid = chars.get(i..i + 36).and_then(|u| uuid::Uuid::try_parse(&u.iter().collect::<String>()).ok());
        if c.is_whitespace() || c == ';' {
            i += 1;
        } else if let Some(u) = uuid.filter(|_| !chars.get(i + 36).is_some_and(|n| n.is_ascii_alphanumeric())) {
            // An unquoted uuid literal (before numbers and words, which it starts like).
            out.push(Token::Uuid(u));
            i += 36;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
            i += 1;
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Int(text.parse().map_err(|e| format!("number {text}: {e}"))?));
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Text(s));
        } else if c == '?' {
            out.push(Token::Marker);
            i += 1;
        } else if c == ':' && chars.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') {
            // A named marker, bound by its position like `?`.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Marker);
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let punct = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(p) = punct {
                out.push(Token::Punct(p));
                i += 2;
                continue;
            }
            let p = match c {
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '+' => "+",
                '.' => ".",
                '*' => "*",
                other => return Err(format!("unexpected character `{other}`")),
            };
            out.push(Token::Punct(p));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word(word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, word: &str) -> Result<(), String> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(format!("expected `{word}`, found {:?}", self.peek()))
        }
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(q)) if *q == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn punct(&mut self, p: &str) -> Result<(), String> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(format!("expected `{p}`, found {:?}", self.peek()))
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let w = w.to_lowercase();
                self.at += 1;
                Ok(w)
            }
            other => Err(format!("expected a name, found {other:?}")),
        }
    }

    /// `ks.table`
    fn table(&mut self) -> Result<(Option<String>, String), String> {
        let first = self.identifier()?;
        if self.eat_punct(".") {
            Ok((Some(first), self.identifier()?))
        } else {
            Ok((None, first))
        }
    }

    fn term(&mut self) -> Result<Term, String> {
        let t = match self.peek() {
            Some(Token::Marker) => Term::Marker,
            Some(Token::Int(n)) => Term::Literal(Literal::Int(*n)),
            Some(Token::Text(s)) => Term::Literal(Literal::Text(s.clone())),
            Some(Token::Uuid(u)) => Term::Literal(Literal::Uuid(*u)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Term::Literal(Literal::Null),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Term::Literal(Literal::Bool(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Term::Literal(Literal::Bool(false)),
            other => return Err(format!("expected a value or `?`, found {other:?}")),
        };
        self.at += 1;
        Ok(t)
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        self.punct("(")?;
        let mut out = vec![item(self)?];
        while self.eat_punct(",") {
            out.push(item(self)?);
        }
        self.punct(")")?;
        Ok(out)
    }

    fn operator(&mut self) -> Result<Operator, String> {
        for (p, op) in [("=", Operator::Eq), ("<=", Operator::Le), (">=", Operator::Ge), ("<", Operator::Lt), (">", Operator::Gt)] {
            if self.eat_punct(p) {
                return Ok(op);
            }
        }
        Err(format!("expected a comparison, found {:?}", self.peek()))
    }

    fn relation(&mut self) -> Result<Relation, String> {
        if self.eat_word("token") {
            let columns = self.list(Self::identifier)?;
            let op = self.operator()?;
            self.word("token")?;
            let terms = self.list(Self::term)?;
            if terms.len() != columns.len() {
                return Err("token() compares as many values as it names columns".into());
            }
            return Ok(Relation { target: Target::Token(columns), op, terms });
        }
        if matches!(self.peek(), Some(Token::Punct("("))) {
            let columns = self.list(Self::identifier)?;
            let op = self.operator()?;
            let terms = self.list(Self::term)?;
            if terms.len() != columns.len() {
                return Err("a tuple relation compares as many values as it names columns".into());
            }
            return Ok(Relation { target: Target::Tuple(columns), op, terms });
        }
        let column = self.identifier()?;
        let op = self.operator()?;
        let term = self.term()?;
        Ok(Relation { target: Target::Column(column), op, terms: vec![term] })
    }

    fn relations(&mut self) -> Result<Vec<Relation>, String> {
        let mut out = vec![self.relation()?];
        while self.eat_word("and") {
            out.push(self.relation()?);
        }
        Ok(out)
    }

    fn condition(&mut self) -> Result<Condition, String> {
        if !self.eat_word("if") {
            return Ok(Condition::None);
        }
        if self.eat_word("not") {
            self.word("exists")?;
            return Ok(Condition::NotExists);
        }
        if self.eat_word("exists") {
            return Ok(Condition::Exists);
        }
        let mut out = Vec::new();
        loop {
            let column = self.identifier()?;
            self.punct("=")?;
            out.push((column, self.term()?));
            if !self.eat_word("and") {
                break;
            }
        }
        Ok(Condition::Columns(out))
    }

    fn using_ttl(&mut self) -> Result<Option<Term>, String> {
        if !self.eat_word("using") {
            return Ok(None);
        }
        self.word("ttl")?;
        Ok(Some(self.term()?))
    }

    fn end(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected {t:?} after the statement")),
        }
    }

    fn select(&mut self) -> Result<(Option<String>, String, Kind), String> {
        let mut selectors = Vec::new();
        if !self.eat_punct("*") {
            loop {
                let name = self.identifier()?;
                if name == "ttl" && self.eat_punct("(") {
                    selectors.push(Selector::Ttl(self.identifier()?));
                    self.punct(")")?;
                } else {
                    selectors.push(Selector::Column(name));
                }
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        self.word("from")?;
        let (ks, table) = self.table()?;
        let relations = if self.eat_word("where") { self.relations()? } else { Vec::new() };
        let limit = if self.eat_word("limit") { Some(self.term()?) } else { None };
        Ok((ks, table, Kind::Select { selectors, relations, limit }))
    }

    fn insert(&mut self) -> Result<(Option<String>, String, Kind), String> {
        self.word("into")?;
        let (ks, table) = self.table()?;
        let columns = self.list(Self::identifier)?;
        self.word("values")?;
        let values = self.list(Self::term)?;
        if values.len() != columns.len() {
            return Err(format!("{} columns but {} values", columns.len(), values.len()));
        }
        // An INSERT's only condition is `IF NOT EXISTS` (as in CQL).
        let condition = if self.eat_word("if") {
            self.word("not")?;
            self.word("exists")?;
            Condition::NotExists
        } else {
            Condition::None
        };
        let ttl = self.using_ttl()?;
        Ok((ks, table, Kind::Insert { columns, values, condition, ttl }))
    }

    fn update(&mut self) -> Result<(Option<String>, String, Kind), String> {
        let (ks, table) = self.table()?;
        let ttl = self.using_ttl()?;
        self.word("set")?;
        let mut assignments = Vec::new();
        loop {
            let column = self.identifier()?;
            self.punct("=")?;
            let add = matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(&column))
                && matches!(self.tokens.get(self.at + 1), Some(Token::Punct("+")));
            if add {
                self.at += 2;
            }
            assignments.push(Assignment { column, term: self.term()?, add });
            if !self.eat_punct(",") {
                break;
            }
        }
        self.word("where")?;
        let relations = self.relations()?;
        let condition = self.condition()?;
        Ok((ks, table, Kind::Update { ttl, assignments, relations, condition }))
    }

    fn delete(&mut self) -> Result<(Option<String>, String, Kind), String> {
        let mut columns = Vec::new();
        while !self.peek_word("from") {
            columns.push(self.identifier()?);
            if !self.eat_punct(",") {
                break;
            }
        }
        self.word("from")?;
        let (ks, table) = self.table()?;
        self.word("where")?;
        let relations = self.relations()?;
        let condition = self.condition()?;
        Ok((ks, table, Kind::Delete { columns, relations, condition }))
    }
}

/// `None` when the statement is not a data statement on a named user keyspace (kassandra's own
/// parser takes it); otherwise the statement or why it does not parse.
pub fn parse(input: &str) -> Option<Result<Statement, String>> {
    let first = input.split_whitespace().next()?.to_ascii_lowercase();
    if !["select", "insert", "update", "delete"].contains(&first.as_str()) {
        return None;
    }
    let tokens = match tokens(input) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let mut p = Parser { tokens, at: 1 };
    let parsed = match first.as_str() {
        "select" => p.select(),
        "insert" => p.insert(),
        "update" => p.update(),
        _ => p.delete(),
    };
    let (keyspace, table, kind) = match parsed {
        // A statement this grammar cannot read may still be one kassandra's parser reads (the
        // driver's queries of its system tables): only a user keyspace's statement is ours.
        Err(e) => {
            return match user_keyspace(input) {
                true => Some(Err(e)),
                false => None,
            }
        }
        Ok(ok) => ok,
    };
    let keyspace = keyspace.filter(|k| !k.starts_with("system"))?;
    Some(p.end().map(|()| Statement { keyspace, table, kind }))
}

/// Whether the statement names a table of a keyspace other than the system ones.
fn user_keyspace(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    ["from ", "into ", "update "].iter().any(|k| {
        lower.split(k).skip(1).any(|rest| {
            let name = rest.split_whitespace().next().unwrap_or("");
            name.contains('.') && !name.starts_with("system")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(q: &str) -> Kind {
        parse(q).expect("a data statement").expect("parses").kind
    }

    #[test]
    fn every_bind_marker_and_clause_is_read() {
        let Kind::Update { ttl, assignments, relations, condition } = kind(
            "UPDATE ks.kv USING TTL ? SET n = ?, value = ?, cas_id = ? WHERE key = ? IF n = ? AND expires_at = ?",
        ) else {
            panic!()
        };
        assert_eq!(ttl, Some(Term::Marker));
        assert_eq!(assignments.len(), 3);
        assert_eq!(relations.len(), 1);
        assert_eq!(condition, Condition::Columns(vec![("n".into(), Term::Marker), ("expires_at".into(), Term::Marker)]));

        let Kind::Insert { values, condition, ttl, .. } =
            kind("INSERT INTO ks.kv (key, n, value) VALUES (?, 1, null) IF NOT EXISTS USING TTL ?")
        else {
            panic!()
        };
        assert_eq!(values, vec![Term::Marker, Term::Literal(Literal::Int(1)), Term::Literal(Literal::Null)]);
        assert_eq!(condition, Condition::NotExists);
        assert_eq!(ttl, Some(Term::Marker));

        let Kind::Select { selectors, relations, limit } =
            kind("SELECT body FROM ks.audit WHERE hour = ? AND (at, chain, seq) < (?, ?, ?) LIMIT ?")
        else {
            panic!()
        };
        assert_eq!(selectors, vec![Selector::Column("body".into())]);
        assert_eq!(relations[1].target, Target::Tuple(vec!["at".into(), "chain".into(), "seq".into()]));
        assert_eq!(relations[1].op, Operator::Lt);
        assert_eq!(limit, Some(Term::Marker));

        let Kind::Update { assignments, .. } = kind("UPDATE ks.a SET n = n + ? WHERE m = ?") else { panic!() };
        assert!(assignments[0].add);
        let Kind::Select { relations, .. } = kind("SELECT a FROM ks.t WHERE token(a) > token(?) LIMIT ?") else {
            panic!()
        };
        assert_eq!(relations[0].target, Target::Token(vec!["a".into()]));
    }

    #[test]
    fn system_tables_and_unknown_tails_are_not_taken_silently() {
        assert!(parse("SELECT * FROM system.local WHERE key='local'").is_none());
        assert!(parse("SELECT a FROM ks.t WHERE a = ? ALLOW FILTERING").unwrap().is_err());
        assert!(parse("CREATE TABLE ks.t (a int PRIMARY KEY)").is_none());
        // An INSERT takes no column condition (CQL has none): refused, not ignored.
        assert!(parse("INSERT INTO ks.kv (k, v) VALUES (?, ?) IF v = ?").unwrap().is_err());
    }

    #[test]
    fn named_markers_bind_by_position_and_uuids_are_literals() {
        let id = "6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47";
        let Kind::Insert { values, .. } = kind(&format!("INSERT INTO ks.t (id, a, b) VALUES ({id}, :a, :b_2)")) else {
            panic!()
        };
        assert_eq!(
            values,
            vec![Term::Literal(Literal::Uuid(id.parse().unwrap())), Term::Marker, Term::Marker]
        );
        // A number that merely starts like a uuid stays a number.
        let Kind::Insert { values, .. } = kind("INSERT INTO ks.t (a) VALUES (6)") else { panic!() };
        assert_eq!(values, vec![Term::Literal(Literal::Int(6))]);
    }
}
