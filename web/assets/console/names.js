// Names the console shows: a group's name by its code, and a patient's name masked as the
// server masks it in conversations (张三丰 -> 张**).

const GROUPS = { booking: '预约咨询', billing: '缴费与医保', reports: '报告咨询' };

export function groupName(code) {
  return GROUPS[code] || code;
}

export function mask(name) {
  const chars = [...(name || '')];
  if (chars.length <= 1) return '*';
  return chars[0] + '*'.repeat(chars.length - 1);
}
