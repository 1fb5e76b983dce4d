// 统计分析: the report of a date range (the hospital's local days) from the daily counters:
// totals and rates, bookings per day, department choices, time slots, when patients book
// (weekday × hour), doctors' workload, revenue by channel; exported as Excel or CSV.
import { api, h, table, field, download } from '/admin/ui.js';
import { mount, yuan, hospitalDay, hospitalZoneLabel } from '/static/common/dom.js';
import { messageOf, ApiError } from '/static/common/api.js';
import { columns, bars, heatmap } from '/admin/analytics-charts.js';

const WEEKDAYS = ['周一', '周二', '周三', '周四', '周五', '周六', '周日'];

const pct = (x) => `${(x * 100).toFixed(1)}%`;

function stat(label, value, id) {
  return h('div', { class: 'stat', id }, h('span', { class: 'muted' }, label), h('strong', {}, value));
}

function chartCard(title, chart, note) {
  return h('div', { class: 'card' }, h('h3', {}, title), note ? h('p', { class: 'muted' }, note) : null, chart);
}

function render(out, r) {
  const t = r.totals;
  const stats = h('div', { class: 'stats', id: 'analytics-totals' },
    stat('预约数', String(t.booked), 'stat-booked'),
    stat('已支付', String(t.paid), 'stat-paid'),
    stat('取消率', pct(r.rates.cancellation), 'stat-cancel'),
    stat('爽约率', pct(r.rates.no_show), 'stat-noshow'),
    stat('候补转化率', pct(r.rates.waitlist_conversion), 'stat-waitlist'),
    stat('接诊人数', String(t.consults), 'stat-consults'),
    stat('收入', yuan(t.revenue - t.refunds), 'stat-revenue'));
  if (!t.booked && !t.paid && !t.consults && !t.revenue && !t.missed) {
    return mount(out, stats, h('p', { class: 'empty', id: 'analytics-empty' }, '所选时间段内还没有预约数据'));
  }
  const daily = columns('chart-daily', r.daily.map((d) => ({ label: d.day, short: d.day.slice(5), n: d.booked })), { unit: ' 个预约', height: 170 });
  const depts = r.departments.length
    ? bars('chart-departments', r.departments.map((d) => ({ label: d.name, n: d.booked, note: pct(d.share) })), { width: 520 })
    : h('p', { class: 'empty' }, '暂无数据');
  const slots = r.slots.length
    ? columns('chart-slots', r.slots.map((x) => ({ label: x.time, n: x.booked })), { height: 200, width: 420, color: '#b35c00' })
    : h('p', { class: 'empty' }, '暂无数据');
  const doctors = table([
    ['医生', (d) => d.name], ['预约', (d) => String(d.booked)], ['接诊人数', (d) => String(d.consults)],
    ['出诊次数', (d) => String(d.sessions)], ['每次出诊接诊', (d) => d.patients_per_session.toFixed(1)],
    ['平均接诊时长', (d) => d.consults ? `${(d.avg_consult_secs / 60).toFixed(1)} 分钟` : '—'],
  ], r.doctors);
  const deptTable = table([
    ['科室', (d) => d.name], ['预约', (d) => String(d.booked)], ['已支付', (d) => String(d.paid)],
    ['取消', (d) => String(d.cancelled)], ['爽约', (d) => String(d.missed)], ['爽约率', (d) => pct(d.no_show_rate)],
  ], r.departments);
  const channels = table([
    ['支付渠道', (c) => ({ wechat_pay: '微信支付', alipay: '支付宝', insurance_fund: '医保统筹', personal_account: '医保个人账户', balance: '账户余额' })[c.channel] || c.channel],
    ['收入', (c) => yuan(c.revenue)], ['退款', (c) => yuan(c.refunds)],
  ], r.channels);
  mount(out, stats,
    chartCard('每日预约', daily, `按下单日期（${hospitalZoneLabel()}）统计的预约数`),
    h('div', { class: 'two' },
      chartCard('科室选择', depts, '各科室的预约数及占比'),
      chartCard('就诊时段', slots, '按号源开始时间统计的预约数')),
    chartCard('预约时间偏好', heatmap('chart-heatmap', r.weekday_hour, WEEKDAYS), '患者在一周中哪天、几点下单（颜色越深预约越多）'),
    h('div', { class: 'card' }, h('h3', {}, '科室明细'), deptTable),
    h('div', { class: 'card' }, h('h3', {}, '医生工作量'), doctors),
    h('div', { class: 'card' }, h('h3', {}, '收入（按支付渠道）'), channels));
}

export async function analyticsPage(main) {
  const out = h('div', { id: 'analytics-report' });
  const err = h('div', { class: 'error', role: 'alert', id: 'analytics-error' });
  const from = h('input', { name: 'from', type: 'date', value: hospitalDay(-29), required: true });
  const to = h('input', { name: 'to', type: 'date', value: hospitalDay(0), required: true });
  const range = () => new URLSearchParams({ from: from.value, to: to.value }).toString();
  const show = (x) => {
    const range = x instanceof ApiError && x.code === 'invalid_field' && (x.field === 'from' || x.field === 'to');
    err.textContent = range
      ? `日期范围无效（${x.field === 'from' ? '开始日期' : '结束日期'}）：开始日期不能晚于结束日期，且一次最多 366 天。`
      : messageOf(x);
  };
  const load = async () => {
    err.textContent = '';
    try {
      render(out, await api('GET', `/api/v1/admin/analytics/report?${range()}`));
    } catch (x) {
      if (x instanceof ApiError && x.status === 401) throw x;
      mount(out);
      show(x);
    }
  };
  const exporter = (format) => async () => {
    err.textContent = '';
    try {
      await download(`/api/v1/admin/analytics/export?${range()}&format=${format}`, `统计分析-${from.value}-${to.value}.${format}`);
    } catch (x) {
      show(x);
    }
  };
  const form = h('form', { class: 'card form', id: 'analytics-range', onsubmit: (e) => { e.preventDefault(); load(); } },
    h('div', { class: 'fields' }, field('开始日期', from), field('结束日期', to)),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'analytics-load' }, '查询'),
      h('button', { type: 'button', class: 'secondary', id: 'export-xlsx', onclick: exporter('xlsx') }, '导出 Excel'),
      h('button', { type: 'button', class: 'secondary', id: 'export-csv', onclick: exporter('csv') }, '导出 CSV')),
    h('p', { class: 'muted' }, `日期按${hospitalZoneLabel()}计，一次最多查询 366 天。数据随预约、取消、签到、就诊实时累计。`),
    err);
  mount(main, h('h2', {}, '统计分析'), form, out);
  await load();
}
