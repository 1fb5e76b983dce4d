// 排班: a doctor's stored weekly template (edited line by line, saved; the server applies it
// every day to the weeks ahead), a one-off template over a date range, and the doctor's sessions,
// each with its slot times and places adjustable (号源调整).
import { api, h, table, field, form, when, refusalOf } from '/admin/ui.js';
import { mount, yuan, hospitalDay } from '/static/common/dom.js';
import { ApiError, messageOf } from '/static/common/api.js';
import { watch } from '/admin/staff_socket.js';

const WEEKDAYS = ['一', '二', '三', '四', '五', '六', '日'];
const STATUS = { open: '开放', stopped: '停诊' };
const PERIODS = [['morning', '上午'], ['afternoon', '下午'], ['evening', '夜间']];
/** What staff read for this page's own refusals, in place of the server's English. */
const REFUSALS = {
  quota_below_booked: '号数不能少于已预约人数（刚有患者预约，请取消后重新打开调整）',
  version_conflict: '模板已被他人修改，请刷新页面后再保存',
  session_stopped: '该出诊已停诊，不能调整',
};

function periodLabel(p) { return (PERIODS.find((x) => x[0] === p) || [0, p])[1]; }
function hm(t) { return (t || '').slice(0, 5); }
/** A session's slots as staff read them: times, places left, closed to booking. */
function places(x) {
  return (x.slots || []).map((sl) => `${hm(sl.start)}-${hm(sl.end)} 余${sl.remaining}${sl.closed ? '（已截止）' : ''}`).join('；');
}
/** A session as an availability update leaves it (places left per slot, the first slot open). */
function updated(x, d) {
  const slots = (x.slots || []).map((sl, i) => ({ ...sl,
    remaining: d.remaining[i] ?? sl.remaining, closed: i < (d.open_from ?? 0) }));
  return { ...x, slots, status: d.status };
}
/** What a refused field of this page means to staff. */
const FIELDS = {
  lines: '模板须有 1 至 21 行（每个星期和时段一行）',
  segments: '号源时段有误：须按时间顺序、互不重叠，每段开始早于结束',
};
/** A wrong template line, which the server names by its path (`lines[2].end`, `lines[2].period`). */
const LINE_FIELDS = {
  end: (n) => `第 ${n} 行：开始时间须早于结束时间`,
  period: (n) => `第 ${n} 行：与前面一行的星期和时段相同（每个星期和时段只能有一行）`,
};
function explain(x) {
  if (!(x instanceof ApiError)) return messageOf(x);
  if (REFUSALS[x.code]) return REFUSALS[x.code];
  const line = x.code === 'invalid_field' && /^lines\[(\d+)\]\.(end|period)$/.exec(x.field || '');
  if (line) return LINE_FIELDS[line[2]](Number(line[1]) + 1);
  return refusalOf(x, FIELDS);
}
/** The places booked in a slot as read (null if unknown). */
function booked(sl) {
  return sl && sl.quota != null && sl.remaining != null ? sl.quota - sl.remaining : null;
}
/** A 号源调整 refused for places below bookings: which segments, by the bookings the editor read
 * (`slots`) against the places asked (`segments`; a segment left out asks none). Segment i keeps
 * its bookings whatever its new time, so row i may not go below slot i's. */
function belowBooked(slots, segments) {
  const short = (slots || []).map((sl, i) => ({ n: i + 1, booked: booked(sl), quota: segments[i]?.quota }))
    .filter((r) => r.booked && (r.quota ?? 0) < r.booked);
  return short.length
    ? short.map((r) => (r.quota == null ? `第 ${r.n} 段已约 ${r.booked} 人，不能删除`
      : `第 ${r.n} 段号数 ${r.quota} 少于已约 ${r.booked} 人`)).join('；') + '。号数不能少于已预约人数。'
    : REFUSALS.quota_below_booked;
}

/** One editable template line as a table row; `read()` gives it as the API takes it. */
function lineRow(l, remove) {
  const weekday = h('select', { name: 'weekday' },
    WEEKDAYS.map((w, i) => h('option', { value: String(i + 1), selected: l.weekday === i + 1 }, '星期' + w)));
  const period = h('select', { name: 'period' },
    PERIODS.map(([v, t]) => h('option', { value: v, selected: l.period === v }, t)));
  const start = h('input', { name: 'start', type: 'time', value: hm(l.start) || '08:00' });
  const end = h('input', { name: 'end', type: 'time', value: hm(l.end) || '12:00' });
  const minutes = h('input', { name: 'minutes', type: 'number', min: '5', max: '240', value: String(l.segment_minutes || 30) });
  const quota = h('input', { name: 'quota', type: 'number', min: '0', max: '500', value: String(l.quota ?? 10) });
  const fee = h('input', { name: 'fee', type: 'number', min: '0', step: '0.5', placeholder: '按职称',
    value: l.fee == null ? '' : String(l.fee / 100) });
  const tr = h('tr', { class: 'line' },
    [weekday, period, start, end, minutes, quota, fee].map((el) => h('td', {}, el)),
    h('td', {}, h('button', { type: 'button', class: 'remove-line', onclick: () => remove(tr) }, '删除')));
  tr.read = () => ({
    weekday: Number(weekday.value), period: period.value, start: start.value, end: end.value,
    segment_minutes: Number(minutes.value), quota: Number(quota.value),
    fee: fee.value === '' ? null : Math.round(Number(fee.value) * 100),
    release_days_before: l.release_days_before ?? 7, release_time: hm(l.release_time) || '08:00',
  });
  return tr;
}

/** The stored template of `doctor`: its lines to edit, save and delete, and its last run. */
async function templateCard(card, doctor, onApplied) {
  let stored = null;
  try {
    stored = await api('GET', `/api/v1/admin/schedule-templates/${doctor}`);
  } catch (x) {
    if (!(x instanceof ApiError && x.status === 404)) {
      mount(card, h('h3', {}, '排班模板'), h('p', { class: 'error', role: 'alert' }, explain(x)));
      return;
    }
  }
  const body = h('tbody', {});
  const remove = (tr) => { tr.remove(); };
  const add = (l) => body.appendChild(lineRow(l, remove));
  (stored ? stored.lines : []).forEach(add);
  const err = h('div', { class: 'error', role: 'alert' });
  const status = h('p', { class: 'muted', id: 'template-status' });
  const showStatus = (t) => {
    if (!t) { mount(status, '该医生还没有排班模板：添加几行后保存，系统每天自动按模板排出未来几周的出诊。'); return; }
    const run = t.last_run;
    mount(status, `第 ${t.version} 版，${when(t.updated_at)} 保存。`,
      run ? `最近应用：${when(run.at)}（${run.from} 至 ${run.to}）新建 ${run.created} 个出诊，已有 ${run.skipped} 个保持不变。`
        : '等待自动应用……');
  };
  showStatus(stored);
  const save = h('button', { type: 'submit' }, '保存模板');
  const del = h('button', { type: 'button', id: 'delete-template', disabled: !stored, onclick: async () => {
    err.textContent = '';
    if (!confirm('删除该医生的排班模板？已排出的出诊保留。')) return;
    try {
      await api('DELETE', `/api/v1/admin/doctors/${doctor}/template`);
      await templateCard(card, doctor, onApplied);
    } catch (x) { err.textContent = explain(x); }
  } }, '删除模板');
  const f = h('form', { class: 'card form', id: 'stored-template', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const lines = [...body.querySelectorAll('tr.line')].map((tr) => tr.read());
    try {
      const t = await api('PUT', `/api/v1/admin/doctors/${doctor}/template`,
        { lines, version: stored ? stored.version : undefined });
      stored = t;
      del.disabled = false;
      showStatus(t);
      status.prepend(h('span', { class: 'ok', id: 'template-saved' }, '已保存。'));
      // The job applies it within a tick or two: show its run, then the sessions it made.
      const version = t.version;
      for (let i = 0; i < 20 && stored && stored.version === version; i += 1) {
        await new Promise((r) => setTimeout(r, 1000));
        const again = await api('GET', `/api/v1/admin/schedule-templates/${doctor}`).catch(() => null);
        if (again && again.version === version && again.last_run && again.last_run.template_version === version) {
          showStatus(again);
          await onApplied();
          break;
        }
      }
    } catch (x) { err.textContent = explain(x); }
  } },
  h('h3', {}, '排班模板（自动排班）'), status,
  h('table', { class: 'grid lines' },
    h('thead', {}, h('tr', {}, ['星期', '时段', '开始', '结束', '每段分钟', '每段号数', '挂号费（元）', ''].map((t) => h('th', {}, t)))),
    body),
  h('p', {}, h('button', { type: 'button', id: 'add-line', onclick: () => add({}) }, '添加一行')),
  save, del, err);
  mount(card, f);
}

/** The slot editor of one session: its segments' times and places. */
function segmentEditor(box, session, done) {
  const body = h('tbody', {});
  const row = (sl) => {
    const tr = h('tr', { class: 'segment' },
      h('td', {}, h('input', { name: 'start', type: 'time', value: hm(sl.start) })),
      h('td', {}, h('input', { name: 'end', type: 'time', value: hm(sl.end) })),
      h('td', {}, h('input', { name: 'quota', type: 'number', min: '0', max: '500', value: String(sl.quota) })),
      h('td', {}, booked(sl) != null ? `已约 ${booked(sl)}` : ''),
      h('td', {}, h('button', { type: 'button', onclick: () => tr.remove() }, '删除')));
    body.appendChild(tr);
  };
  (session.slots || []).forEach(row);
  const err = h('div', { class: 'error', role: 'alert' });
  const f = h('form', { class: 'card form', id: 'segments-editor', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const segments = [...body.querySelectorAll('tr.segment')].map((tr) => ({
      start: tr.querySelector('[name=start]').value, end: tr.querySelector('[name=end]').value,
      quota: Number(tr.querySelector('[name=quota]').value),
    }));
    try {
      const r = await api('PUT', `/api/v1/admin/sessions/${session.session_id}/segments`, { segments });
      await done(`已调整 ${session.date} ${periodLabel(session.period)} 的号源，已通知 ${r.notified.length} 位患者新的就诊时间。`);
    } catch (x) {
      err.textContent = x instanceof ApiError && x.code === 'quota_below_booked'
        ? belowBooked(session.slots, segments)
        : explain(x);
    }
  } },
  h('h3', {}, `号源调整：${session.date} ${periodLabel(session.period)}`),
  h('p', { class: 'muted' }, '按顺序修改各时段的时间和号数；已预约的患者保留原序号，时间变化时会收到通知。'),
  h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, ['开始', '结束', '号数', '', ''].map((t) => h('th', {}, t)))), body),
  h('p', {}, h('button', { type: 'button', onclick: () => {
    const last = [...body.querySelectorAll('tr.segment [name=end]')].pop();
    row({ start: last ? last.value : '08:00', end: last ? last.value : '08:30', quota: 1 });
  } }, '添加时段')),
  h('button', { type: 'submit' }, '保存调整'),
  h('button', { type: 'button', onclick: () => box.replaceChildren() }, '取消'), err);
  mount(box, f);
  f.scrollIntoView({ block: 'nearest' });
}

export async function schedulesPage(main, me) {
  // Every doctor, those of switched-off departments too: their sessions and bookings are still ours to run.
  const list = await api('GET', '/api/v1/admin/schedule-doctors');
  const sessions = h('div', { class: 'card', id: 'sessions' }, h('p', { class: 'muted' }, '选择医生查看排班'));
  const tpl = h('div', { id: 'template-card' });
  const editor = h('div', { id: 'segments-box' });
  const today = hospitalDay(0);
  const later = hospitalDay(27);
  // The sessions shown, by id: an update from the staff socket is applied to them in place.
  let shown = new Map();
  const onUpdate = (u) => {
    const x = shown.get(u.data.session_id);
    if (!x) return;
    // Re-timed slots (another member's 号源调整) or a stop (停诊) change more than two cells: read again.
    if (u.data.remaining.length !== (x.slots || []).length || u.data.status !== x.status) {
      showSessions(u.data.doctor_id);
      return;
    }
    const next = updated(x, u.data);
    shown.set(x.session_id, next);
    const row = sessions.querySelector(`[data-places="${x.session_id}"]`);
    if (row) row.textContent = places(next);
    const st = sessions.querySelector(`[data-status="${x.session_id}"]`);
    if (st) st.textContent = STATUS[next.status] || next.status || '';
  };
  const showSessions = async (doctor, note) => {
    // Watched before it is read: a booking in between reaches the rows read.
    const live = await watch([`doctor:${doctor}`], {
      update: onUpdate,
      // While the socket is down the list is not live: it says so, and reads again once back.
      down: () => { const c = sessions.querySelector('#sessions-live'); if (c) c.remove(); },
      resync: () => showSessions(doctor),
    });
    const s = await api('GET', `/api/v1/admin/doctors/${doctor}/schedule?from=${today}&to=${later}`);
    shown = new Map((s.sessions || []).map((x) => [x.session_id, x]));
    mount(sessions, h('h3', {}, '未来四周的出诊',
      live ? h('span', { class: 'muted', id: 'sessions-live', title: '患者预约时余号随之更新' }, '（实时）') : null),
    note ? h('p', { class: 'ok', id: 'adjusted' }, note) : null, table([
      ['日期', (x) => x.date], ['时段', (x) => periodLabel(x.period)],
      ['号源', (x) => h('span', { dataset: { places: x.session_id } }, places(x))],
      ['挂号费', (x) => yuan(x.fee)],
      ['状态', (x) => h('span', { dataset: { status: x.session_id } }, STATUS[x.status] || x.status || '')],
      ['', (x) => (x.status === 'open'
        ? h('button', { type: 'button', class: 'adjust', dataset: { session: x.session_id },
          onclick: () => segmentEditor(editor, shown.get(x.session_id) || x, async (msg) => { editor.replaceChildren(); await showSessions(doctor, msg); }) }, '调整号源')
        : '')],
    ], s.sessions || [], '未来四周没有出诊'));
  };
  const choose = async (doctor) => {
    editor.replaceChildren();
    await Promise.all([templateCard(tpl, doctor, () => showSessions(doctor)), showSessions(doctor)]);
  };
  const pick = h('select', { name: 'doctor', id: 'doctor-pick', onchange: (e) => choose(e.target.value) },
    list.map((d) => h('option', { value: d.id },
      `${d.name}（${d.department_name}${d.department_open ? '' : '，科室已停用'}）`)));
  const apply = form('按周模板排班（一次性）', [
    field('开始日期', h('input', { name: 'from', type: 'date', value: today, required: true })),
    field('结束日期', h('input', { name: 'to', type: 'date', value: later, required: true })),
    field('星期', h('select', { name: 'weekday' }, WEEKDAYS.map((w, i) => h('option', { value: String(i + 1) }, '星期' + w)))),
    field('时段', h('select', { name: 'period' }, PERIODS.map(([v, l]) => h('option', { value: v }, l)))),
    field('开始', h('input', { name: 'start', type: 'time', value: '08:00' })),
    field('结束', h('input', { name: 'end', type: 'time', value: '12:00' })),
    field('每段分钟', h('input', { name: 'minutes', type: 'number', value: '30' })),
    field('每段号数', h('input', { name: 'quota', type: 'number', value: '10' })),
  ], '生成排班', (f) => api('POST', `/api/v1/admin/doctors/${pick.value}/sessions`, {
    from: f.from.value, to: f.to.value,
    weekly: [{ weekday: Number(f.weekday.value), period: f.period.value, start: f.start.value + ':00', end: f.end.value + ':00',
      segment_minutes: Number(f.minutes.value), quota: Number(f.quota.value) }],
    release_days_before: 7, release_time: '08:00:00',
  }), async (r) => {
    await showSessions(pick.value);
    sessions.prepend(h('p', { class: 'ok', id: 'applied' }, `新建 ${r.created.length} 个出诊，跳过已有 ${r.skipped} 个`));
  }, 'apply-template');
  if (!list.length) {
    mount(main, h('h2', {}, '排班'), h('p', { class: 'empty' }, '还没有医生：请先在“科室与医生”中添加医生。'));
    return;
  }
  mount(main, h('h2', {}, '排班'), h('div', { class: 'card' }, field('医生', pick)), tpl,
    h('div', { class: 'two' }, h('div', {}, sessions, editor), apply));
  await choose(list[0].id);
}
