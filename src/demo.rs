//! A deterministic demo hospital (示例市第一人民医院): buildings, a two-level department tree, about a
//! hundred doctors and two weeks of clinic sessions. Pure: no I/O, no clock, no OS randomness; a
//! seeded splitmix64 drives every choice, so the same inputs always give the same data and ids.

use std::collections::HashSet;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Weekday};
use hospital_domain::catalog::{pinyin_initials, Building, Department, Doctor, DoctorTitle, Floor, Hospital};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::time::HospitalZone;
use hospital_domain::{DepartmentId, DoctorId, SessionId};
use uuid::{Builder, Uuid};

/// Everything the demo seeds: the hospital, its department tree, doctors and sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoData {
    pub hospital: Hospital,
    pub departments: Vec<Department>,
    pub doctors: Vec<Doctor>,
    pub sessions: Vec<ClinicSession>,
}

/// How many days of sessions the demo schedules, starting today.
pub const SCHEDULE_DAYS: u64 = 14;
/// Slots are released (放号) this many days before the session, at 08:00 local time.
pub const RELEASE_DAYS_AHEAD: u64 = 7;
/// Length of one bookable segment (分时段), in minutes.
pub const SEGMENT_MINUTES: i64 = 30;
/// The doctor the tests (and the demo script) search for: "建国" or "wjg".
pub const FEATURED_DOCTOR: &str = "王建国";

const SEED: u64 = 0x5EED_D0C7_0120_2025;
/// 2025-01-01T00:00:00Z: the timestamp part of the catalogue's v7 ids, so they sort in table order.
const DEMO_EPOCH_MS: u64 = 1_735_689_600_000;

const HOSPITAL_NAME: &str = "示例市第一人民医院";
const HOSPITAL_LEVEL: &str = "三级甲等";
const HOSPITAL_INTRODUCTION: &str =
    "示例市第一人民医院始建于1952年，是一所集医疗、教学、科研、预防保健于一体的三级甲等综合医院，\
也是示例大学附属第一医院。医院编制床位2000张，设临床及医技科室40余个，拥有省级重点专科8个，年门急诊量逾260万人次。\
医院配备3.0T磁共振、256排CT、数字减影血管造影机等先进设备，建有胸痛中心、卒中中心、创伤中心和危重孕产妇救治中心，\
秉承“仁心、精术、求实、创新”的院训，为市民提供优质、便捷、温馨的医疗服务。";
// The fictional 示例市 sits where Hangzhou's 滨江区 is: the map pin is a real place in China.
const HOSPITAL_ADDRESS: &str = "示例市滨江区健康大道1号（地铁6号线人民医院站C出口）";
const HOSPITAL_PHONE: &str = "0571-86001120";
const HOSPITAL_LAT_LON: (f64, f64) = (30.2084, 120.2108);
const SERVICE_HOURS: &str = "门诊：周一至周五 08:00-12:00、13:30-17:30，周六 08:00-12:00；\
儿科及急诊夜间门诊 18:00-21:00；急诊24小时开放";

/// (code, name, floors as (level, rooms)).
type BuildingRow = (&'static str, &'static str, &'static [(i32, &'static [&'static str])]);
#[rustfmt::skip] // one row per line reads better than rustfmt's one field per line
const BUILDINGS: &[BuildingRow] = &[
    (
        "A",
        "门诊楼",
        &[
            (1, &["门诊大厅", "导诊服务台", "挂号收费处", "自助服务区", "西药房", "中药房", "儿科诊区（C区）", "儿童输液室"]),
            (2, &["心血管内科（A区）", "呼吸内科（A区）", "消化内科（B区）", "内分泌科（B区）", "神经内科（C区）", "肾内科（C区）", "心电图室"]),
            (3, &["血液内科（A区）", "风湿免疫科（A区）", "普通外科（B区）", "乳腺外科（B区）", "骨科（C区）", "泌尿外科（C区）", "神经外科（D区）", "胸外科（D区）", "门诊换药室"]),
            (4, &["妇科（A区）", "产科（B区）", "生殖医学科（C区）", "皮肤科（D区）", "胎心监护室"]),
            (5, &["眼科（A区）", "耳鼻咽喉科（B区）", "口腔科（C区）", "听力检测室"]),
            (6, &["中医内科（A区）", "针灸推拿科（B区）", "康复医学科（C区）", "精神心理科（D区）", "煎药室"]),
        ],
    ),
    (
        "B",
        "急诊楼",
        &[
            (1, &["急诊挂号收费处", "急诊内科（A区）", "急诊外科（B区）", "抢救室", "急诊药房"]),
            (2, &["急诊留观室", "急诊输液室", "急诊CT室"]),
        ],
    ),
    (
        "C",
        "医技楼",
        &[
            (1, &["放射科", "CT室", "磁共振室", "DR摄片室"]),
            (2, &["超声医学科", "检验科", "门诊采血处"]),
            (3, &["核医学科", "内镜中心"]),
            (4, &["病理科", "心功能检查室"]),
        ],
    ),
    (
        "D",
        "住院部",
        &[
            (1, &["入出院办理处", "住院药房", "医保服务中心"]),
            (2, &["手术室", "麻醉复苏室"]),
            (3, &["心血管内科病区", "冠心病监护室（CCU）"]),
            (4, &["消化内科病区", "内分泌科病区"]),
            (5, &["呼吸内科病区", "神经内科病区"]),
            (6, &["普通外科病区", "乳腺外科病区"]),
            (7, &["骨科病区"]),
            (8, &["妇产科病区", "产房"]),
            (9, &["儿科病区", "新生儿重症监护室（NICU）"]),
            (10, &["神经外科病区", "重症医学科（ICU）"]),
            (11, &["泌尿外科病区", "胸外科病区"]),
        ],
    ),
    ("E", "感染门诊楼", &[(1, &["发热门诊", "肠道门诊", "感染科诊区"])]),
];

/// Root departments: (name, description, location).
#[rustfmt::skip] // one row per line reads better than rustfmt's one field per line
const ROOTS: &[(&str, &str, &str)] = &[
    ("内科", "内科系统涵盖心血管、消化、呼吸、神经、内分泌、肾脏、血液及风湿免疫等专业，负责各类内科常见病、多发病及疑难危重症的诊治。", "门诊楼2-3楼"),
    ("外科", "外科系统设有普通外科、骨科、神经外科、泌尿外科、胸外科及乳腺外科，开展微创手术、创伤救治和肿瘤综合治疗。", "门诊楼3楼"),
    ("妇产科", "妇产科提供妇科疾病诊治、孕产期保健、分娩及生殖健康服务，是区域危重孕产妇救治中心。", "门诊楼4楼"),
    ("儿科", "儿科为0-14岁儿童提供内科、外科及新生儿医疗服务，开设儿童夜间门诊和周末门诊。", "门诊楼1楼C区"),
    ("五官科", "五官科包括眼科、耳鼻咽喉科和口腔科，配备眼底照相、鼻内镜、口腔CBCT等专科设备。", "门诊楼5楼"),
    ("急诊医学科", "急诊医学科24小时开放，承担急危重症患者的抢救、急诊手术和留观治疗，是胸痛中心和卒中中心的重要组成部分。", "急诊楼1楼"),
    ("中医科", "中医科坚持中西医结合，运用中药、针灸、推拿、拔罐等方法防治慢性病、疼痛及亚健康状态。", "门诊楼6楼"),
    ("综合门诊", "综合门诊包括皮肤科、康复医学科、精神心理科和感染科，为患者提供专科化、全周期的健康管理。", "门诊楼4楼、6楼及感染门诊楼"),
    ("医技科室", "医技科室提供医学影像、超声和核医学检查与治疗，为临床诊断提供精准依据。", "医技楼"),
];

/// Leaf departments: (root, name, description, location, doctors, evening and weekend clinics,
/// specialties its doctors draw from).
type LeafRow = (&'static str, &'static str, &'static str, &'static str, usize, bool, &'static [&'static str]);
#[rustfmt::skip] // one row per line reads better than rustfmt's one field per line
const LEAVES: &[LeafRow] = &[
    ("内科", "心血管内科", "心血管内科是省级重点专科，开展冠脉介入、心脏起搏器植入和射频消融等技术，24小时开放胸痛绿色通道。", "门诊楼2楼A区", 6, false, &["冠心病", "高血压", "心律失常", "心力衰竭", "心肌病", "血脂异常"]),
    ("内科", "消化内科", "消化内科擅长胃肠道及肝胆胰疾病的诊治，每年完成胃肠镜检查和内镜下治疗逾两万例。", "门诊楼2楼B区", 5, false, &["胃炎", "消化性溃疡", "炎症性肠病", "脂肪肝", "消化道早癌筛查", "胰腺炎"]),
    ("内科", "呼吸内科", "呼吸内科诊治慢性阻塞性肺疾病、哮喘、肺部感染和肺结节，开展支气管镜检查及肺功能评估。", "门诊楼2楼A区", 4, false, &["慢性阻塞性肺疾病", "支气管哮喘", "肺结节", "肺部感染", "睡眠呼吸暂停"]),
    ("内科", "神经内科", "神经内科是卒中中心的核心科室，开展急性脑梗死静脉溶栓与取栓，擅长癫痫、帕金森病和头痛的诊治。", "门诊楼2楼C区", 4, false, &["脑梗死", "帕金森病", "癫痫", "头痛", "眩晕", "认知障碍"]),
    ("内科", "内分泌科", "内分泌科专注糖尿病、甲状腺疾病、骨质疏松及肥胖等代谢性疾病，设有糖尿病教育门诊和胰岛素泵治疗。", "门诊楼2楼B区", 4, false, &["糖尿病", "甲状腺疾病", "骨质疏松", "肥胖症", "痛风"]),
    ("内科", "肾内科", "肾内科诊治各类原发和继发性肾脏疾病，设有血液透析中心和腹膜透析门诊。", "门诊楼2楼C区", 3, false, &["慢性肾脏病", "肾小球肾炎", "血液透析", "腹膜透析", "肾病综合征"]),
    ("内科", "血液内科", "血液内科诊治贫血、白血病、淋巴瘤等血液系统疾病，开展骨髓穿刺与规范化化疗。", "门诊楼3楼A区", 2, false, &["贫血", "白血病", "淋巴瘤", "血小板减少症"]),
    ("内科", "风湿免疫科", "风湿免疫科诊治类风湿关节炎、系统性红斑狼疮、强直性脊柱炎等自身免疫性疾病。", "门诊楼3楼A区", 2, false, &["类风湿关节炎", "系统性红斑狼疮", "强直性脊柱炎", "干燥综合征"]),
    ("外科", "普通外科", "普通外科开展腹腔镜胆囊切除、疝修补、胃肠及甲状腺手术，年手术量位居全院前列。", "门诊楼3楼B区", 5, false, &["胆囊结石", "疝气", "甲状腺结节", "胃肠肿瘤", "阑尾炎"]),
    ("外科", "骨科", "骨科设关节、脊柱、创伤与运动医学专业，开展人工关节置换、脊柱微创和关节镜手术。", "门诊楼3楼C区", 5, false, &["骨折", "腰椎间盘突出", "膝关节骨关节炎", "颈椎病", "运动损伤", "人工关节置换"]),
    ("外科", "神经外科", "神经外科擅长颅脑外伤、脑出血、颅内肿瘤及脊髓疾病的手术治疗，配备神经导航和术中电生理监测。", "门诊楼3楼D区", 3, false, &["颅脑外伤", "脑出血", "颅内肿瘤", "三叉神经痛", "脑积水"]),
    ("外科", "泌尿外科", "泌尿外科开展输尿管软镜碎石、前列腺电切和腹腔镜肾脏手术，诊治泌尿系结石及肿瘤。", "门诊楼3楼C区", 3, false, &["泌尿系结石", "前列腺增生", "泌尿系肿瘤", "尿路感染"]),
    ("外科", "胸外科", "胸外科以胸腔镜微创手术为特色，诊治肺癌、食管癌、纵隔肿瘤和胸部外伤。", "门诊楼3楼D区", 3, false, &["肺癌", "肺结节", "食管癌", "纵隔肿瘤", "气胸"]),
    ("外科", "乳腺外科", "乳腺外科提供乳腺疾病筛查、微创旋切和乳腺癌规范化综合治疗。", "门诊楼3楼B区", 2, false, &["乳腺结节", "乳腺癌", "乳腺炎", "乳腺增生"]),
    ("妇产科", "妇科", "妇科诊治妇科炎症、子宫肌瘤、卵巢囊肿及妇科肿瘤，开展宫腔镜和腹腔镜微创手术。", "门诊楼4楼A区", 4, false, &["子宫肌瘤", "卵巢囊肿", "宫颈病变", "月经失调", "盆腔炎"]),
    ("妇产科", "产科", "产科提供孕前咨询、产前检查、高危妊娠管理与分娩服务，倡导自然分娩和母乳喂养。", "门诊楼4楼B区", 4, false, &["产前检查", "高危妊娠", "妊娠期糖尿病", "妊娠期高血压", "产后康复"]),
    ("妇产科", "生殖医学科", "生殖医学科开展不孕不育诊治、人工授精和体外受精-胚胎移植技术，提供个体化助孕方案。", "门诊楼4楼C区", 2, false, &["不孕症", "多囊卵巢综合征", "复发性流产", "辅助生殖"]),
    ("儿科", "儿内科", "儿内科诊治儿童呼吸、消化、神经及过敏性疾病，工作日晚间和周末均开设儿科门诊。", "门诊楼1楼C区", 5, true, &["小儿发热", "小儿肺炎", "小儿腹泻", "儿童哮喘", "儿童生长发育"]),
    ("儿科", "儿外科", "儿外科开展小儿疝气、包茎、隐睾等先天性疾病手术，推行日间手术以缩短住院时间。", "门诊楼1楼C区", 2, false, &["小儿疝气", "包皮包茎", "隐睾", "小儿外伤"]),
    ("儿科", "新生儿科", "新生儿科负责早产儿和危重新生儿救治，并开设新生儿黄疸及早产儿随访门诊。", "门诊楼1楼C区", 2, false, &["新生儿黄疸", "早产儿随访", "新生儿喂养", "新生儿感染"]),
    ("五官科", "眼科", "眼科开展白内障超声乳化、青光眼、眼底病和斜弱视诊治，并提供青少年近视防控服务。", "门诊楼5楼A区", 4, false, &["白内障", "青光眼", "眼底病", "近视防控", "干眼症"]),
    ("五官科", "耳鼻咽喉科", "耳鼻咽喉科擅长鼻内镜手术、中耳炎及听力障碍诊治，设有听力检测室和睡眠监测室。", "门诊楼5楼B区", 3, false, &["慢性鼻窦炎", "过敏性鼻炎", "中耳炎", "耳鸣耳聋", "咽喉炎"]),
    ("五官科", "口腔科", "口腔科提供牙体牙髓、牙周、拔牙、种植和正畸服务，配备口腔CBCT和显微根管治疗设备。", "门诊楼5楼C区", 4, false, &["龋齿", "根管治疗", "牙周病", "智齿拔除", "种植牙", "牙齿正畸"]),
    ("急诊医学科", "急诊内科", "急诊内科24小时接诊胸痛、卒中、中毒和各类内科急症，实行分级分区救治。", "急诊楼1楼A区", 3, true, &["急性胸痛", "急性中毒", "发热", "急性腹痛", "心肺复苏"]),
    ("急诊医学科", "急诊外科", "急诊外科处理各类创伤、急腹症和外科急症，24小时开放清创缝合室。", "急诊楼1楼B区", 3, true, &["创伤急救", "清创缝合", "急腹症", "烧烫伤"]),
    ("中医科", "中医内科", "中医内科运用辨证论治和膏方调理，诊治失眠、胃肠功能紊乱、慢性咳嗽等内科杂病。", "门诊楼6楼A区", 3, false, &["失眠", "脾胃病", "慢性咳嗽", "体质调理", "膏方"]),
    ("中医科", "针灸推拿科", "针灸推拿科运用针刺、艾灸、推拿和小针刀治疗颈肩腰腿痛、面瘫及中风后遗症。", "门诊楼6楼B区", 3, false, &["颈肩腰腿痛", "面瘫", "中风后遗症", "小儿推拿", "针灸减重"]),
    ("综合门诊", "皮肤科", "皮肤科诊治湿疹、痤疮、银屑病等常见皮肤病，开展激光治疗和皮肤病理检查。", "门诊楼4楼D区", 3, false, &["湿疹", "痤疮", "银屑病", "荨麻疹", "带状疱疹", "白癜风"]),
    ("综合门诊", "康复医学科", "康复医学科为脑卒中、骨关节术后和慢性疼痛患者提供物理治疗、作业治疗和言语训练。", "门诊楼6楼C区", 2, false, &["脑卒中康复", "骨科术后康复", "慢性疼痛", "吞咽障碍"]),
    ("综合门诊", "精神心理科", "精神心理科提供焦虑、抑郁、睡眠障碍等心理问题的评估、药物治疗和心理咨询。", "门诊楼6楼D区", 2, false, &["焦虑症", "抑郁症", "睡眠障碍", "青少年心理问题"]),
    ("综合门诊", "感染科", "感染科诊治病毒性肝炎、发热待查及各类感染性疾病，独立设置发热门诊和肠道门诊。", "感染门诊楼1楼", 2, false, &["病毒性肝炎", "发热待查", "肝硬化", "抗菌药物合理使用"]),
    ("医技科室", "放射科", "放射科配备3.0T磁共振、256排CT和数字X线摄影设备，开设影像诊断咨询与介入治疗门诊。", "医技楼1楼", 2, false, &["影像诊断", "介入治疗", "肺结节影像评估"]),
    ("医技科室", "超声医学科", "超声医学科开展腹部、心脏、血管、妇产及浅表器官超声检查，以及超声引导下穿刺活检。", "医技楼2楼", 2, false, &["腹部超声", "心脏超声", "超声引导下穿刺", "甲状腺超声"]),
    ("医技科室", "核医学科", "核医学科开展SPECT显像和甲状腺功能亢进症的碘-131治疗，设有核素治疗门诊。", "医技楼3楼", 2, false, &["甲状腺功能亢进症", "碘-131治疗", "骨扫描"]),
];

/// The featured doctor, first of his department: (department, specialties, introduction, popularity).
const FEATURED: (&str, &[&str], &str, u32) = (
    "心血管内科",
    &["冠心病", "高血压", "心力衰竭"],
    "主任医师，心血管内科主任，从事心血管内科临床工作32年，擅长冠心病、高血压和心力衰竭的诊治及冠脉介入治疗。\
曾赴中国医学科学院阜外医院进修学习，兼任示例市医学会心血管病学分会副主任委员。",
    2600,
);

/// (title, share in percent, years in practice, popularity range, places per segment before a +0/+1).
type TitleRow = (DoctorTitle, usize, (u32, u32), (u32, u32), u32);
const TITLES: [TitleRow; 4] = [
    (DoctorTitle::ChiefPhysician, 14, (25, 35), (800, 2000), 2),
    (DoctorTitle::AssociateChiefPhysician, 26, (15, 24), (400, 1200), 3),
    (DoctorTitle::AttendingPhysician, 35, (8, 14), (150, 600), 4),
    (DoctorTitle::ResidentPhysician, 25, (2, 6), (20, 300), 5),
];

/// Common surnames, most common first (picks lean towards the front).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于",
    "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆",
    "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "段",
    "雷", "侯", "龙", "史",
];
const GIVEN: &[char] = &[
    '伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '涛', '明', '超', '秀', '霞', '平',
    '刚', '华', '红', '玉', '萍', '鹏', '辉', '玲', '斌', '宇', '浩', '凯', '健', '俊', '帆', '旭', '宁', '晨', '欣',
    '婷', '雪', '琳', '晶', '颖', '慧', '倩', '文', '博', '海', '峰', '志', '建', '国', '立', '新', '亮', '春', '晓',
    '云', '德', '正', '永', '成', '嘉', '思', '雨', '佳', '安', '泽', '瑞', '阳', '诚', '毅', '珊', '蕾', '薇', '荣',
    '飞', '震', '岚', '琦',
];
const SCHOOLS: &[&str] = &[
    "浙江大学医学院",
    "复旦大学上海医学院",
    "中山大学中山医学院",
    "四川大学华西临床医学院",
    "首都医科大学",
    "南京医科大学",
];
const SENIOR_NOTES: &[&str] = &[
    "曾赴北京协和医院进修学习。",
    "主持省级科研课题多项，发表学术论文二十余篇。",
    "兼任示例市医学会专科分会副主任委员。",
    "曾在美国梅奥诊所访问学习一年。",
    "荣获示例市“十佳医师”称号。",
];
const JUNIOR_NOTES: &[&str] =
    &["工作认真负责，深受患者好评。", "参与完成市级科研课题两项。", "耐心细致，注重与患者沟通。"];

const WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

/// The demo hospital. `today` is the hospital's local date; sessions cover today and the next 13
/// days (14 days). The catalogue (hospital, departments, doctors, their ids) does not depend on
/// the inputs; a session's id and quota depend only on its doctor, date and period.
pub fn demo_hospital(today: NaiveDate, zone: HospitalZone) -> DemoData {
    let mut rng = Rng(SEED);

    let mut departments = Vec::new();
    let mut leaf_ids = vec![None; LEAVES.len()];
    for (sort, &(root, description, location)) in ROOTS.iter().enumerate() {
        let root_id = DepartmentId(rng.uuid(DEMO_EPOCH_MS + departments.len() as u64));
        departments.push(department(root_id, None, root, description, location, sort));
        for (sort, (i, leaf)) in LEAVES.iter().enumerate().filter(|(_, l)| l.0 == root).enumerate() {
            let id = DepartmentId(rng.uuid(DEMO_EPOCH_MS + departments.len() as u64));
            departments.push(department(id, Some(root_id), leaf.1, leaf.2, leaf.3, sort));
            leaf_ids[i] = Some(id);
        }
    }

    // Titles come from a shuffled deck dealt in the TITLES proportions (rounding goes to
    // attending physicians), so the spread is exact rather than at the mercy of the seed.
    let total: usize = LEAVES.iter().map(|l| l.4).sum();
    let mut deck: Vec<usize> =
        TITLES.iter().enumerate().flat_map(|(i, t)| std::iter::repeat_n(i, t.1 * total / 100)).collect();
    deck.resize(total, 2);
    rng.shuffle(&mut deck);

    // Doctors, each with a title row (TITLES index) and a weekly timetable.
    let mut taken = HashSet::from([FEATURED_DOCTOR.to_string()]);
    let mut doctors = Vec::new();
    let mut plans = Vec::new();
    for (&(_, dept, _, _, count, extended, pool), dept_id) in LEAVES.iter().zip(leaf_ids) {
        let department_id = dept_id.expect("every leaf names a root of ROOTS");
        for i in 0..count {
            let id = DoctorId(rng.uuid(DEMO_EPOCH_MS + 10_000 + doctors.len() as u64));
            let (row, name, specialties, introduction, popularity) = if dept == FEATURED.0 && i == 0 {
                let specialties = FEATURED.1.iter().map(|s| s.to_string()).collect();
                (0, FEATURED_DOCTOR.to_string(), specialties, FEATURED.2.to_string(), FEATURED.3)
            } else {
                let row = deck[doctors.len()];
                let (title, _, years, popularity, _) = TITLES[row];
                let name = unique_name(&mut rng, &mut taken);
                let n = 2 + rng.below(3);
                let specialties = rng.sample(pool, n);
                let years = rng_range(&mut rng, years);
                let intro = introduction(&mut rng, title, dept, years, &specialties);
                (row, name, specialties, intro, rng_range(&mut rng, popularity))
            };
            plans.push((row, weekly_plan(&mut rng, extended, i)));
            let title = TITLES[row].0;
            doctors.push(Doctor {
                id,
                department_id,
                name,
                title,
                specialties,
                introduction,
                popularity,
                own_fee: None,
                photo: None,
            });
        }
    }

    let mut sessions = Vec::new();
    for day in 0..SCHEDULE_DAYS {
        let date = today + Days::new(day);
        let release_at = zone.to_utc(date - Days::new(RELEASE_DAYS_AHEAD), hm(8, 0));
        let release_ms = u64::try_from(release_at.timestamp_millis()).unwrap_or(0);
        for (doctor, (row, plan)) in doctors.iter().zip(&plans) {
            for period in Period::ALL.into_iter().filter(|&p| plan.contains(&(date.weekday(), p))) {
                let mut rng = Rng(session_seed(doctor.id, date, period));
                let (start, end) = period_hours(period);
                let quota = TITLES[*row].4 + rng.below(2) as u32;
                sessions.push(ClinicSession {
                    id: SessionId(rng.uuid(release_ms)),
                    doctor_id: doctor.id,
                    department_id: doctor.department_id,
                    date,
                    period,
                    segments: split_segments(start, end, SEGMENT_MINUTES, quota),
                    fee: doctor.title.default_fee(),
                    release_at,
                    status: SessionStatus::Open,
                });
            }
        }
    }

    DemoData { hospital: hospital(), departments, doctors, sessions }
}

fn hospital() -> Hospital {
    let buildings = BUILDINGS
        .iter()
        .map(|&(code, name, floors)| Building {
            code: code.into(),
            name: name.into(),
            floors: floors
                .iter()
                .map(|&(level, rooms)| Floor { level, rooms: rooms.iter().map(|r| r.to_string()).collect() })
                .collect(),
        })
        .collect();
    Hospital {
        name: HOSPITAL_NAME.into(),
        level: HOSPITAL_LEVEL.into(),
        introduction: HOSPITAL_INTRODUCTION.into(),
        address: HOSPITAL_ADDRESS.into(),
        phone: HOSPITAL_PHONE.into(),
        latitude: HOSPITAL_LAT_LON.0,
        longitude: HOSPITAL_LAT_LON.1,
        service_hours: SERVICE_HOURS.into(),
        buildings,
    }
}

fn department(
    id: DepartmentId,
    parent_id: Option<DepartmentId>,
    name: &str,
    description: &str,
    location: &str,
    sort: usize,
) -> Department {
    Department {
        id,
        parent_id,
        name: name.into(),
        description: description.into(),
        location: location.into(),
        sort: sort as i32,
        enabled: true,
    }
}

/// A full name not yet taken, that neither contains "建国" nor has the initials "wjg": those
/// belong to the featured doctor alone.
fn unique_name(rng: &mut Rng, taken: &mut HashSet<String>) -> String {
    loop {
        let n = SURNAMES.len();
        let surname = SURNAMES[rng.below(n).min(rng.below(n))];
        let (a, b) = (GIVEN[rng.below(GIVEN.len())], GIVEN[rng.below(GIVEN.len())]);
        // A quarter of the given names are one character; no doubled ones such as 浩浩.
        let name = match (rng.below(4), a == b) {
            (0, _) => format!("{surname}{a}"),
            (_, false) => format!("{surname}{a}{b}"),
            (_, true) => continue,
        };
        if !name.contains("建国") && !pinyin_initials(&name).contains("wjg") && taken.insert(name.clone()) {
            return name;
        }
    }
}

fn introduction(rng: &mut Rng, title: DoctorTitle, dept: &str, years: u32, specialties: &[String]) -> String {
    let (label, skills) = (title.label(), specialties.join("、"));
    let mut text = match rng.below(3) {
        0 => format!("{label}，从事{dept}临床工作{years}年，擅长{skills}的诊断与治疗。"),
        1 => format!("{label}，{dept}业务骨干，临床经验{years}年，尤其擅长{skills}的规范化诊疗。"),
        _ => {
            let school = SCHOOLS[rng.below(SCHOOLS.len())];
            format!("{label}，毕业于{school}，从事{dept}专业{years}年，擅长{skills}等疾病的诊治。")
        }
    };
    let senior = matches!(title, DoctorTitle::ChiefPhysician | DoctorTitle::AssociateChiefPhysician);
    if senior || rng.below(2) == 0 {
        let notes = if senior { SENIOR_NOTES } else { JUNIOR_NOTES };
        text.push_str(notes[rng.below(notes.len())]);
    }
    text
}

/// The half-days a doctor works each week: 5-7 of them, weekday mornings and afternoons, some
/// Saturday mornings; departments with extended hours add an evening and a weekend half-day
/// (alternating Saturday and Sunday between colleagues, so Sundays are covered too).
fn weekly_plan(rng: &mut Rng, extended: bool, index: usize) -> Vec<(Weekday, Period)> {
    let target = 5 + rng.below(3);
    let mut plan = Vec::new();
    if extended {
        let weekend = if index.is_multiple_of(2) { Weekday::Sat } else { Weekday::Sun };
        plan.push((weekend, if rng.below(2) == 0 { Period::Morning } else { Period::Afternoon }));
        plan.push((WEEKDAYS[rng.below(WEEKDAYS.len())], Period::Evening));
    } else if rng.below(10) < 3 {
        plan.push((Weekday::Sat, Period::Morning));
    }
    let mut pool: Vec<(Weekday, Period)> =
        WEEKDAYS.iter().flat_map(|&d| [(d, Period::Morning), (d, Period::Afternoon)]).collect();
    rng.shuffle(&mut pool);
    plan.extend(pool.into_iter().take(target - plan.len()));
    plan
}

fn period_hours(period: Period) -> (NaiveTime, NaiveTime) {
    match period {
        Period::Morning => (hm(8, 0), hm(12, 0)),
        Period::Afternoon => (hm(13, 30), hm(17, 30)),
        Period::Evening => (hm(18, 0), hm(21, 0)),
    }
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("a valid wall-clock time")
}

/// A seed that depends only on the doctor, the date and the period.
fn session_seed(doctor: DoctorId, date: NaiveDate, period: Period) -> u64 {
    let u = doctor.as_uuid().as_u128();
    let day = date.num_days_from_ce() as u64;
    mix(u as u64 ^ mix((u >> 64) as u64 ^ mix(day.wrapping_mul(3).wrapping_add(period as u64))))
}

fn rng_range(rng: &mut Rng, (lo, hi): (u32, u32)) -> u32 {
    lo + rng.below((hi - lo + 1) as usize) as u32
}

/// splitmix64's output function.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: tiny, seedable, good enough for demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
    /// Up to `n` distinct items of `pool`, in random order.
    fn sample(&mut self, pool: &[&str], n: usize) -> Vec<String> {
        let mut items = pool.to_vec();
        self.shuffle(&mut items);
        items.into_iter().take(n).map(String::from).collect()
    }
    /// A version-7 UUID with the given timestamp and random bits from the generator.
    fn uuid(&mut self, unix_ms: u64) -> Uuid {
        let (a, b) = (self.next().to_le_bytes(), self.next().to_le_bytes());
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b[..2]);
        Builder::from_unix_timestamp_millis(unix_ms, &bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::catalog::SearchKey;
    use std::collections::{BTreeSet, HashMap};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn demo() -> DemoData {
        demo_hospital(today(), HospitalZone::default())
    }

    #[test]
    fn counts_and_hospital() {
        let d = demo();
        println!(
            "departments={} (roots={}), doctors={}, sessions={}",
            d.departments.len(),
            d.departments.iter().filter(|x| x.parent_id.is_none()).count(),
            d.doctors.len(),
            d.sessions.len()
        );
        assert!(d.departments.len() >= 24);
        assert_eq!(d.departments.len(), ROOTS.len() + LEAVES.len(), "every leaf found its root");
        assert!(d.doctors.len() >= 90);
        assert_eq!(d.hospital.name, "示例市第一人民医院");
        assert_eq!(d.hospital.level, "三级甲等");
        assert!(d.hospital.introduction.chars().count() > 100);
        assert!((18.0..54.0).contains(&d.hospital.latitude) && (73.0..135.0).contains(&d.hospital.longitude));
        assert!(d.hospital.buildings.len() >= 3 && d.hospital.buildings.iter().all(|b| !b.floors.is_empty()));
        let codes: HashSet<_> = d.hospital.buildings.iter().map(|b| &b.code).collect();
        assert_eq!(codes.len(), d.hospital.buildings.len());
    }

    #[test]
    fn department_tree_is_two_levels_and_located() {
        let d = demo();
        let by_id: HashMap<_, _> = d.departments.iter().map(|x| (x.id, x)).collect();
        let names: HashSet<_> = d.departments.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names.len(), d.departments.len(), "department names are unique");
        let buildings: Vec<_> = d.hospital.buildings.iter().map(|b| b.name.as_str()).collect();
        for dep in &d.departments {
            if let Some(parent) = dep.parent_id {
                let parent = by_id.get(&parent).expect("parent exists");
                assert!(parent.parent_id.is_none(), "depth 2: {} is under a root", dep.name);
                assert!(buildings.iter().any(|b| dep.location.starts_with(b)), "{} located", dep.name);
            }
            assert!(dep.description.chars().count() >= 20, "{} has a description", dep.name);
        }
        for root in d.departments.iter().filter(|x| x.parent_id.is_none()) {
            assert!(d.departments.iter().any(|x| x.parent_id == Some(root.id)), "{} has children", root.name);
        }
        for name in ["内科", "外科", "心血管内科", "骨科", "儿内科", "眼科", "口腔科", "皮肤科", "放射科"]
        {
            assert!(names.contains(name), "{name}");
        }
    }

    #[test]
    fn doctors_are_in_leaves_with_unique_names_and_spread_titles() {
        let d = demo();
        let ids: HashSet<_> = d.departments.iter().map(|x| x.id).collect();
        let parents: HashSet<_> = d.departments.iter().filter_map(|x| x.parent_id).collect();
        let mut names = HashSet::new();
        let mut titles: HashMap<DoctorTitle, usize> = HashMap::new();
        for doc in &d.doctors {
            assert!(
                ids.contains(&doc.department_id) && !parents.contains(&doc.department_id),
                "{} in a leaf",
                doc.name
            );
            assert!(names.insert(doc.name.as_str()), "duplicate name {}", doc.name);
            assert!((2..=4).contains(&doc.specialties.len()), "{}: {:?}", doc.name, doc.specialties);
            assert!(doc.introduction.starts_with(doc.title.label()));
            *titles.entry(doc.title).or_default() += 1;
        }
        println!("titles: {titles:?}");
        assert_eq!(titles.len(), 4, "all four titles used");
        let chiefs = titles[&DoctorTitle::ChiefPhysician];
        assert!(titles.values().all(|&n| n >= chiefs), "fewest chief physicians");
        let mean = |t: DoctorTitle| {
            let p: Vec<_> = d.doctors.iter().filter(|x| x.title == t).map(|x| x.popularity).collect();
            p.iter().sum::<u32>() / p.len() as u32
        };
        assert!(mean(DoctorTitle::ChiefPhysician) > mean(DoctorTitle::ResidentPhysician));
    }

    #[test]
    fn featured_doctor_is_found_by_fragment_and_initials_alone() {
        let d = demo();
        let dept_name: HashMap<_, _> = d.departments.iter().map(|x| (x.id, x.name.as_str())).collect();
        let key = |doc: &Doctor| {
            SearchKey::new(
                [doc.name.as_str(), dept_name[&doc.department_id]]
                    .into_iter()
                    .chain(doc.specialties.iter().map(String::as_str)),
            )
        };
        let wang: Vec<_> = d.doctors.iter().filter(|x| x.name == "王建国").collect();
        assert_eq!(wang.len(), 1);
        let wang = wang[0];
        assert_eq!(dept_name[&wang.department_id], "心血管内科");
        assert!(wang.specialties.iter().any(|s| s == "冠心病"));
        assert!(SearchKey::new([wang.name.as_str()]).score("wjg") > 0);
        assert!(key(wang).score("建国") > 0);
        for doc in d.doctors.iter().filter(|x| x.id != wang.id) {
            assert_eq!(SearchKey::new([doc.name.as_str()]).score("wjg"), 0, "{}", doc.name);
            assert_eq!(key(doc).score("wjg"), 0, "{} (whole key)", doc.name);
            assert_eq!(key(doc).score("建国"), 0, "{}", doc.name);
        }
    }

    #[test]
    fn sessions_are_valid_released_early_and_cover_two_weeks() {
        let zone = HospitalZone::default();
        let d = demo();
        let doctors: HashMap<_, _> = d.doctors.iter().map(|x| (x.id, x)).collect();
        let dates: BTreeSet<_> = d.sessions.iter().map(|s| s.date).collect();
        assert_eq!(dates.len(), 14);
        assert_eq!(dates.first(), Some(&today()));
        assert_eq!(dates.last(), Some(&(today() + Days::new(13))));
        for s in &d.sessions {
            s.validate().unwrap();
            let doc = doctors[&s.doctor_id];
            assert_eq!(s.department_id, doc.department_id);
            assert_eq!(s.fee, doc.title.default_fee());
            assert_eq!(s.status, SessionStatus::Open);
            assert!(s.segments.iter().all(|g| (2..=6).contains(&g.quota)));
            assert!(s.segments.iter().all(|g| (g.end - g.start).num_minutes() == 30));
            let starts = zone.to_utc(s.date, s.segments[0].start);
            assert!(s.release_at < starts);
            assert_eq!(s.release_at, zone.to_utc(s.date - Days::new(7), hm(8, 0)));
        }
        // Each doctor works 5-7 half-days a week, so 10-14 sessions over two weeks.
        for doc in &d.doctors {
            let n = d.sessions.iter().filter(|s| s.doctor_id == doc.id).count();
            assert!((10..=14).contains(&n), "{} has {n} sessions", doc.name);
        }
        assert!(d.sessions.iter().any(|s| s.period == Period::Evening));
        // Today's sessions were released a week ago; the last week's are not yet.
        let now = zone.to_utc(today(), hm(9, 0));
        assert!(d.sessions.iter().filter(|s| s.date == today()).all(|s| s.release_at <= now));
        assert!(d.sessions.iter().filter(|s| s.date >= today() + Days::new(8)).all(|s| s.release_at > now));
    }

    #[test]
    fn deterministic_with_unique_ids() {
        let d = demo();
        assert_eq!(d, demo());
        let dept: HashSet<_> = d.departments.iter().map(|x| x.id).collect();
        let docs: HashSet<_> = d.doctors.iter().map(|x| x.id).collect();
        let sess: HashSet<_> = d.sessions.iter().map(|x| x.id).collect();
        assert_eq!(dept.len(), d.departments.len());
        assert_eq!(docs.len(), d.doctors.len());
        assert_eq!(sess.len(), d.sessions.len());
        assert!(d.departments.iter().all(|x| x.id.as_uuid().get_version_num() == 7));
        // The catalogue does not move with the date, and a session keeps its id across days.
        let later = demo_hospital(today() + Days::new(3), HospitalZone::default());
        assert_eq!((&later.departments, &later.doctors), (&d.departments, &d.doctors));
        let shared = later.sessions.iter().filter(|s| s.date <= today() + Days::new(13));
        for s in shared {
            assert!(d.sessions.contains(s), "session {} {:?} is stable", s.date, s.period);
        }
    }
}
