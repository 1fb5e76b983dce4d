// 批量导入: a department / doctor / template spreadsheet (XLSX or CSV) is checked first (a dry
// run: every row's result, every error with its sheet, row and column), and written only when the
// check found no error. Every cell from the file or the server is shown as text.
import { api, h, table, field } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';
import { messageOf } from '/static/common/api.js';

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const KINDS = { departments: '科室', doctors: '医生', templates: '排班模板' };
const ACTIONS = { create: '新增', update: '更新', unchanged: '无变化', sessions: '生成出诊' };
const CODES = {
  missing: '缺少内容', invalid: '格式错误', duplicate: '重复', unknown_department: '科室不存在',
  unknown_doctor: '医生不存在', unknown_column: '未知列', missing_column: '缺少列', too_many_rows: '行数过多',
};

/** This page's refusals of a whole file, in place of the server's English. */
const REFUSALS = {
  import_unreadable: '文件无法读取：请上传 XLSX 工作簿，或 UTF-8、GBK 编码的 CSV 文件（其中的引号须成对）',
  unsupported_media_type: '只能导入 XLSX 或 CSV 文件',
  payload_too_large: '文件太大，请分成几个文件导入',
  import_invalid: '文件有错误，未写入任何数据：请先“检查”查看全部错误',
};

/** The file as a body whose type the server reads (a browser may give a CSV no type at all). */
function bodyOf(file) {
  const csv = /\.csv$/i.test(file.name);
  return new Blob([file], { type: csv ? 'text/csv' : XLSX });
}

function query(f, dry) {
  const q = new URLSearchParams({ dry_run: String(dry), weeks: f.weeks.value });
  if (f.kind.value) q.set('kind', f.kind.value);
  return q.toString();
}

function reportView(r) {
  const summary = h('p', { class: r.errors.length ? 'error' : 'ok', id: 'import-summary' },
    r.errors.length
      ? `发现 ${r.errors.length} 处错误，未写入任何数据。请修改文件后重新检查。`
      : r.written
        ? `已导入：科室新增 ${r.departments.create}、更新 ${r.departments.update}；医生新增 ${r.doctors.create}、更新 ${r.doctors.update}；新建出诊 ${r.sessions_created} 个（已有 ${r.sessions_skipped} 个未改动）。`
        : `检查通过：科室新增 ${r.departments.create}、更新 ${r.departments.update}、无变化 ${r.departments.unchanged}；医生新增 ${r.doctors.create}、更新 ${r.doctors.update}、无变化 ${r.doctors.unchanged}；将生成出诊 ${r.sessions_planned} 个。`);
  const sheets = h('p', { class: 'muted' }, r.sheets.map((s) => `${s.name}（${KINDS[s.kind] || s.kind}，${s.rows} 行）`).join('　'));
  const errors = r.errors.length
    ? h('div', { id: 'import-errors' }, h('h3', {}, '错误'), table([
      ['工作表', (e) => e.sheet], ['行', (e) => String(e.row)], ['列', (e) => e.label || e.column || ''],
      ['问题', (e) => CODES[e.code] || e.code], ['说明', (e) => e.message_zh || e.message],
    ], r.errors))
    : null;
  const rows = h('div', { id: 'import-rows' }, h('h3', {}, '逐行结果'), table([
    ['工作表', (x) => x.sheet], ['行', (x) => String(x.row)], ['编码', (x) => x.key],
    ['结果', (x) => (ACTIONS[x.action] || x.action) + (x.sessions != null ? ` ${x.sessions} 个` : '')],
  ], r.rows, '没有可导入的行'));
  return [summary, sheets, errors, rows];
}

export async function importPage(main) {
  const out = h('div', { class: 'card', id: 'import-report' },
    h('p', { class: 'muted' }, '选择文件后先“检查”，确认无误再“导入”。同一文件重复导入不会产生重复数据（按科室编码、医生编码识别）。'));
  const err = h('div', { class: 'error', role: 'alert' });
  let checked = null; // the file that passed its dry run
  const apply = h('button', { type: 'button', id: 'import-apply', disabled: true }, '导入');
  const file = h('input', { name: 'file', type: 'file', accept: '.xlsx,.csv', required: true,
    onchange: () => { checked = null; apply.disabled = true; } });
  const run = async (dry) => {
    err.textContent = '';
    const f = form;
    if (!file.files.length) { err.textContent = '请选择文件'; return; }
    try {
      const r = await api('POST', `/api/v1/admin/import?${query(f, dry)}`, bodyOf(file.files[0]));
      mount(out, ...reportView(r));
      checked = dry && !r.errors.length ? file.files[0] : null;
      apply.disabled = !checked;
    } catch (x) {
      err.textContent = REFUSALS[x.code] || messageOf(x);
      apply.disabled = true;
    }
  };
  apply.onclick = () => run(false);
  const form = h('form', { class: 'card form', id: 'import-form', onsubmit: (e) => { e.preventDefault(); run(true); } },
    h('h3', {}, '导入科室、医生与排班模板'),
    h('div', { class: 'fields' },
      field('文件（XLSX 或 CSV）', file),
      field('CSV 的内容', h('select', { name: 'kind' }, h('option', { value: '' }, '按列名识别'),
        Object.entries(KINDS).map(([v, l]) => h('option', { value: v }, l)))),
      field('生成几周的出诊', h('input', { name: 'weeks', type: 'number', min: '1', max: '13', value: '4' }))),
    h('p', { class: 'muted' }, 'XLSX 的工作表名为“科室”“医生”“排班模板”。科室列：科室编码、科室名称、上级科室编码、位置、简介、排序；医生列：医生编码、姓名、科室编码、职称、专长、简介；排班模板列：医生编码、星期、时段、开始时间、结束时间、每段分钟、每段号数、挂号费（元）、提前放号天数、放号时间。'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'import-check' }, '检查'), apply), err);
  mount(main, h('h2', {}, '批量导入'), form, out);
}
