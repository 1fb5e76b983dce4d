//! The sandbox insurance centre's reimbursement rules, held as data (TOML): the catalogue
//! class of each billed item (甲/乙/丙), a policy per region and insured type (deductible
//! 起付线, fund ratio per class, annual fund cap, whether the personal account may pay), and the
//! insured persons with their year-to-date figures; plus the split they produce.
//!
//! # How a bill is split (deterministic, integer fen)
//!
//! 1. Items of a class whose ratio is 0 (丙类 normally) are not covered: paid in full by the
//!    patient (`fulamt_ownpay_amt`) and they do not count towards the deductible.
//! 2. The rest is in scope (`inscp_scp_amt`). What is left of this year's deductible
//!    (`deductible - ytd_deductible_used`) is taken from it, 甲 items first, then 乙, then any
//!    other covered class; that part is the patient's (`act_pay_dedc`).
//! 3. The fund pays `floor(remaining × ratio / 100)` per class; the fen a floor drops are the
//!    patient's.
//! 4. The fund never pays past the annual cap: `min(fund, annual_cap - ytd_fund_paid)`; the
//!    excess is the patient's.
//! 5. The patient's share is the total less the fund. If the policy lets the personal account
//!    pay and the hospital asked for it (`acctUsedFlag=1`), the account pays as much of it as
//!    its balance allows (`psnAcctPay`); the rest is cash (`ownPayAmt`), collected by WeChat
//!    Pay or Alipay in the same checkout.
//!
//! Worked example (the default rules): a ¥350.00 examination (甲类) for 张三, employee-insured
//! (职工, 310) in region 440100, nothing of the ¥200.00 deductible used yet, ¥120.00 in the
//! personal account. Deductible ¥200.00; fund `floor(150.00 × 90%)` = ¥135.00; the patient owes
//! ¥215.00, of which the account pays ¥120.00 and WeChat Pay collects ¥95.00. So
//! `feeSumamt 350.00 = fundPay 135.00 + psnAcctPay 120.00 + ownPayAmt 95.00`
//! (`tests::worked_example_employee_exam`).

use std::collections::BTreeMap;

use hospital_domain::Fen;
use serde::{Deserialize, Serialize};

use super::yuan::parse_yuan;
use super::InsuredType;

/// The default sandbox data: two regions, employee and resident policies, a few persons.
pub const DEFAULT_RULES_TOML: &str = include_str!("sandbox_rules.toml");

/// The medical insurance catalogue class of an item (医保目录 甲类/乙类/丙类).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ItemClass {
    #[serde(rename = "A", alias = "甲")]
    A,
    #[serde(rename = "B", alias = "乙")]
    B,
    #[serde(rename = "C", alias = "丙")]
    C,
}

impl ItemClass {
    /// The national code of 收费项目等级 (chrgitm_lv): 01 甲类, 02 乙类, 03 丙类.
    pub fn chrgitm_lv(self) -> &'static str {
        match self {
            ItemClass::A => "01",
            ItemClass::B => "02",
            ItemClass::C => "03",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Insured region (参保地医保区划, 6 digits).
    pub region: String,
    pub insured_type: InsuredType,
    pub name: String,
    /// 起付线 per calendar year.
    pub deductible: Fen,
    /// Percent of the in-scope amount past the deductible that the fund pays, per class.
    pub ratio_a: u64,
    pub ratio_b: u64,
    pub ratio_c: u64,
    /// The most the fund pays for one person in a year.
    pub annual_cap: Fen,
    /// Whether the personal account (个人账户) may pay the patient's share.
    pub personal_account: bool,
}

impl Policy {
    pub fn ratio(&self, class: ItemClass) -> u64 {
        match class {
            ItemClass::A => self.ratio_a,
            ItemClass::B => self.ratio_b,
            ItemClass::C => self.ratio_c,
        }
    }
}

/// An insured person of the sandbox, with this year's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxPerson {
    /// 人员编号.
    pub psn_no: String,
    pub name: String,
    /// 证件类型, 01 = 居民身份证.
    pub id_type: String,
    pub id_no: String,
    pub insured_type: InsuredType,
    pub region: String,
    pub year: YearToDate,
}

/// What a person has used this year, and the personal account balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct YearToDate {
    pub account_balance: Fen,
    pub fund_paid: Fen,
    pub deductible_used: Fen,
}

/// How one bill divides between the fund, the personal account and cash, with the
/// intermediate amounts the platform reports in `extData.preSetl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Split {
    /// 医疗费总额 / feeSumamt.
    pub total: Fen,
    /// 全自费金额: classes the policy does not cover.
    pub uncovered: Fen,
    /// 符合政策范围金额.
    pub in_scope: Fen,
    /// 起付线 paid by this bill.
    pub deductible: Fen,
    /// What the fund would pay without the annual cap.
    pub fund_uncapped: Fen,
    /// What the cap took off the fund's share.
    pub over_cap: Fen,
    /// 基金支付 / fundPay.
    pub fund: Fen,
    /// 个人账户支付 / psnAcctPay.
    pub account: Fen,
    /// 现金支付 / ownPayAmt.
    pub cash: Fen,
}

/// Applies a policy to a bill. `items` are `(class, amount)`; order does not matter.
pub fn compute_split(policy: &Policy, year: &YearToDate, items: &[(ItemClass, Fen)], use_account: bool) -> Split {
    let mut by_class: BTreeMap<ItemClass, u64> = BTreeMap::new();
    for &(class, amount) in items {
        *by_class.entry(class).or_default() += amount.get();
    }
    let total: u64 = by_class.values().sum();
    let mut uncovered = 0u64;
    let mut in_scope = 0u64;
    let mut deductible_left = policy.deductible.get().saturating_sub(year.deductible_used.get());
    let mut deductible = 0u64;
    let mut fund = 0u64;
    // BTreeMap order is A, B, C: the deductible is taken from 甲 first.
    for (&class, &amount) in &by_class {
        let ratio = policy.ratio(class).min(100);
        if ratio == 0 {
            uncovered += amount;
            continue;
        }
        in_scope += amount;
        let taken = amount.min(deductible_left);
        deductible_left -= taken;
        deductible += taken;
        fund += (amount - taken) * ratio / 100;
    }
    let cap_left = policy.annual_cap.get().saturating_sub(year.fund_paid.get());
    let capped = fund.min(cap_left);
    let patient = total - capped;
    let account = if policy.personal_account && use_account { patient.min(year.account_balance.get()) } else { 0 };
    Split {
        total: Fen::new(total),
        uncovered: Fen::new(uncovered),
        in_scope: Fen::new(in_scope),
        deductible: Fen::new(deductible),
        fund_uncapped: Fen::new(fund),
        over_cap: Fen::new(fund - capped),
        fund: Fen::new(capped),
        account: Fen::new(account),
        cash: Fen::new(patient - account),
    }
}

/// The whole data set of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub catalogue: BTreeMap<String, ItemClass>,
    pub policies: Vec<Policy>,
    pub persons: Vec<SandboxPerson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    catalogue: BTreeMap<String, ItemClass>,
    #[serde(default)]
    policy: Vec<PolicyRow>,
    #[serde(default)]
    person: Vec<PersonRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRow {
    region: String,
    insutype: String,
    name: String,
    deductible: String,
    ratio_a: u64,
    ratio_b: u64,
    ratio_c: u64,
    annual_cap: String,
    personal_account: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonRow {
    psn_no: String,
    name: String,
    #[serde(default = "resident_id_card")]
    id_type: String,
    id_no: String,
    insutype: String,
    region: String,
    #[serde(default = "zero")]
    account_balance: String,
    #[serde(default = "zero")]
    ytd_fund_paid: String,
    #[serde(default = "zero")]
    ytd_deductible_used: String,
}

fn resident_id_card() -> String {
    "01".into()
}

fn zero() -> String {
    "0.00".into()
}

fn amount(text: &str, what: &str) -> Result<Fen, String> {
    parse_yuan(text).ok_or_else(|| format!("{what}: {text:?} is not an amount in yuan (e.g. \"200.00\")"))
}

fn insured_type(code: &str, what: &str) -> Result<InsuredType, String> {
    InsuredType::from_insutype(code)
        .ok_or_else(|| format!("{what}: insutype {code:?} is neither 310 (职工) nor 390 (居民)"))
}

impl Rules {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: RulesFile = toml::from_str(text).map_err(|e| format!("rules: {e}"))?;
        let mut policies = Vec::new();
        for row in file.policy {
            let what = format!("policy {}/{}", row.region, row.insutype);
            if [row.ratio_a, row.ratio_b, row.ratio_c].iter().any(|r| *r > 100) {
                return Err(format!("{what}: ratios are percent, 0 to 100"));
            }
            let policy = Policy {
                insured_type: insured_type(&row.insutype, &what)?,
                deductible: amount(&row.deductible, &what)?,
                annual_cap: amount(&row.annual_cap, &what)?,
                region: row.region,
                name: row.name,
                ratio_a: row.ratio_a,
                ratio_b: row.ratio_b,
                ratio_c: row.ratio_c,
                personal_account: row.personal_account,
            };
            if policies.iter().any(|p: &Policy| p.region == policy.region && p.insured_type == policy.insured_type) {
                return Err(format!("{what}: defined twice"));
            }
            policies.push(policy);
        }
        let mut persons = Vec::new();
        for row in file.person {
            let what = format!("person {}", row.psn_no);
            let person = SandboxPerson {
                insured_type: insured_type(&row.insutype, &what)?,
                year: YearToDate {
                    account_balance: amount(&row.account_balance, &what)?,
                    fund_paid: amount(&row.ytd_fund_paid, &what)?,
                    deductible_used: amount(&row.ytd_deductible_used, &what)?,
                },
                psn_no: row.psn_no,
                name: row.name,
                id_type: row.id_type,
                id_no: row.id_no,
                region: row.region,
            };
            if !policies.iter().any(|p| p.region == person.region && p.insured_type == person.insured_type) {
                return Err(format!("{what}: no policy for region {} and that insured type", person.region));
            }
            if persons.iter().any(|p: &SandboxPerson| p.psn_no == person.psn_no) {
                return Err(format!("{what}: defined twice"));
            }
            persons.push(person);
        }
        Ok(Self { catalogue: file.catalogue, policies, persons })
    }

    pub fn default_rules() -> Self {
        Self::from_toml(DEFAULT_RULES_TOML).expect("the shipped sandbox rules parse")
    }

    pub fn policy(&self, region: &str, insured_type: InsuredType) -> Option<&Policy> {
        self.policies.iter().find(|p| p.region == region && p.insured_type == insured_type)
    }

    /// Items the catalogue does not list are not covered, as at a real centre.
    pub fn class_of(&self, med_list_codg: &str) -> ItemClass {
        self.catalogue.get(med_list_codg).copied().unwrap_or(ItemClass::C)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(text: &str) -> Fen {
        parse_yuan(text).unwrap()
    }

    fn employee() -> Policy {
        Rules::default_rules().policy("440100", InsuredType::Employee).unwrap().clone()
    }

    fn resident() -> Policy {
        Rules::default_rules().policy("440100", InsuredType::Resident).unwrap().clone()
    }

    fn year(balance: &str, fund: &str, deductible: &str) -> YearToDate {
        YearToDate { account_balance: yuan(balance), fund_paid: yuan(fund), deductible_used: yuan(deductible) }
    }

    fn parts(s: &Split) -> [Fen; 4] {
        [s.total, s.fund, s.account, s.cash]
    }

    #[test]
    fn worked_example_employee_exam() {
        let s = compute_split(&employee(), &year("120.00", "0", "0"), &[(ItemClass::A, yuan("350.00"))], true);
        assert_eq!(parts(&s), [yuan("350.00"), yuan("135.00"), yuan("120.00"), yuan("95.00")]);
        assert_eq!(
            (s.deductible, s.in_scope, s.uncovered, s.over_cap),
            (yuan("200.00"), yuan("350.00"), Fen::ZERO, Fen::ZERO)
        );
        // Without the account (acctUsedFlag=0) the whole patient share is cash.
        let s = compute_split(&employee(), &year("120.00", "0", "0"), &[(ItemClass::A, yuan("350.00"))], false);
        assert_eq!(parts(&s), [yuan("350.00"), yuan("135.00"), Fen::ZERO, yuan("215.00")]);
    }

    #[test]
    fn deductible_partly_used_then_exhausted() {
        // 150 of 200 used: 50 left. fund = 90% of 300 = 270.
        let s = compute_split(&employee(), &year("0", "0", "150.00"), &[(ItemClass::A, yuan("350.00"))], true);
        assert_eq!(s.deductible, yuan("50.00"));
        assert_eq!(parts(&s), [yuan("350.00"), yuan("270.00"), Fen::ZERO, yuan("80.00")]);
        // All used: 90% of everything.
        let s = compute_split(&employee(), &year("0", "0", "200.00"), &[(ItemClass::A, yuan("350.00"))], true);
        assert_eq!((s.deductible, s.fund), (Fen::ZERO, yuan("315.00")));
    }

    #[test]
    fn cap_reached_and_floor_rounding() {
        // 2900 of 3000 paid: only 100 left though 90% of 350 would be 315.
        let s = compute_split(&employee(), &year("0", "2900.00", "200.00"), &[(ItemClass::A, yuan("350.00"))], true);
        assert_eq!((s.fund_uncapped, s.fund, s.over_cap), (yuan("315.00"), yuan("100.00"), yuan("215.00")));
        assert_eq!(s.cash, yuan("250.00"));
        // Cap already reached: the fund pays nothing.
        let s = compute_split(&employee(), &year("0", "3000.00", "200.00"), &[(ItemClass::A, yuan("10.00"))], true);
        assert_eq!((s.fund, s.cash), (Fen::ZERO, yuan("10.00")));
        // 90% of ¥0.05 is 4.5 fen: the fund pays 4, the patient the rest.
        let s = compute_split(&employee(), &year("0", "0", "200.00"), &[(ItemClass::A, Fen::new(5))], true);
        assert_eq!((s.fund, s.cash), (Fen::new(4), Fen::new(1)));
    }

    #[test]
    fn class_c_not_covered_and_b_after_a() {
        let items = [(ItemClass::C, yuan("100.00")), (ItemClass::B, yuan("300.00")), (ItemClass::A, yuan("150.00"))];
        let s = compute_split(&employee(), &year("0", "0", "0"), &items, true);
        // 丙 100 uncovered; deductible 200 = 150 of 甲 + 50 of 乙; fund = 80% of 250 = 200.
        assert_eq!((s.uncovered, s.in_scope, s.deductible), (yuan("100.00"), yuan("450.00"), yuan("200.00")));
        assert_eq!((s.fund, s.cash), (yuan("200.00"), yuan("350.00")));
        assert_eq!(s.total, yuan("550.00"));
    }

    #[test]
    fn resident_has_a_higher_deductible_lower_ratio_and_no_account() {
        let s = compute_split(&resident(), &year("500.00", "0", "0"), &[(ItemClass::A, yuan("350.00"))], true);
        // 300 deductible; 60% of 50 = 30; the personal account is not usable.
        assert_eq!(parts(&s), [yuan("350.00"), yuan("30.00"), Fen::ZERO, yuan("320.00")]);
    }

    #[test]
    fn every_split_adds_up() {
        let p = employee();
        for balance in [0u64, 1, 5000, 100000] {
            for used in [0u64, 9999, 20000] {
                for cap_used in [0u64, 299_999, 300_000] {
                    for amount in [0u64, 1, 3, 35000, 999_999] {
                        let y = YearToDate {
                            account_balance: Fen::new(balance),
                            fund_paid: Fen::new(cap_used),
                            deductible_used: Fen::new(used),
                        };
                        let items = [
                            (ItemClass::A, Fen::new(amount)),
                            (ItemClass::B, Fen::new(amount / 3)),
                            (ItemClass::C, Fen::new(7)),
                        ];
                        let s = compute_split(&p, &y, &items, true);
                        assert_eq!(s.fund.get() + s.account.get() + s.cash.get(), s.total.get());
                        assert!(s.account.get() <= balance);
                        assert!(s.fund.get() + cap_used <= p.annual_cap.get().max(cap_used));
                    }
                }
            }
        }
    }

    #[test]
    fn rules_refuse_bad_data() {
        for bad in [
            "[[policy]]\nregion='1'\ninsutype='999'\nname='x'\ndeductible='1'\nratio_a=1\nratio_b=1\nratio_c=0\nannual_cap='1'\npersonal_account=true",
            "[[policy]]\nregion='1'\ninsutype='310'\nname='x'\ndeductible='-1'\nratio_a=1\nratio_b=1\nratio_c=0\nannual_cap='1'\npersonal_account=true",
            "[[policy]]\nregion='1'\ninsutype='310'\nname='x'\ndeductible='1'\nratio_a=101\nratio_b=1\nratio_c=0\nannual_cap='1'\npersonal_account=true",
            "[[person]]\npsn_no='1'\nname='x'\nid_no='1'\ninsutype='310'\nregion='nowhere'",
            "[catalogue]\nX='D'",
            "unknown = 1",
        ] {
            assert!(Rules::from_toml(bad).is_err(), "{bad}");
        }
        let rules = Rules::default_rules();
        assert_eq!(rules.class_of("not-in-the-catalogue"), ItemClass::C);
        assert!(!rules.persons.is_empty());
    }
}
