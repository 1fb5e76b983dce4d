// 科室与医生: the hospital's information (introduction, contacts, hours, map point, buildings,
// floors and rooms), the department tree (order, parent, on/off) and the doctors (profile, title,
// own fee, photo); create and edit them. Changes show in the patient app at once. Staff see the
// whole catalogue (`/api/v1/admin/catalogue`), switched-off departments marked.
import { api, h, table, field, form, flatten } from '/admin/ui.js';
import { mount, yuan } from '/static/common/dom.js';
import { ApiError } from '/static/common/api.js';

const TITLES = [
  ['chief_physician', '主任医师'], ['associate_chief_physician', '副主任医师'],
  ['attending_physician', '主治医师'], ['resident_physician', '住院医师'],
];
const titleLabel = Object.fromEntries(TITLES);

/** What staff read for a refused field of a doctor's form, in place of the server's English. */
const DOCTOR_REFUSALS = {
  name: '姓名须为 1 至 32 个字，且不能含控制字符',
  department_id: '所选科室已不存在，请刷新页面后重试',
  specialties: '专长最多 20 项，每项 1 至 32 个字',
  introduction: '简介最多 4000 个字',
  code: '医生编码须为 1 至 32 个字，且不能与其他医生相同',
};

/** Yuan typed by staff ("35" or "35.5") -> fen; empty -> null; anything else throws. */
function fenOf(text) {
  const t = text.trim();
  if (!t) return null;
  if (!/^\d{1,7}(\.\d{1,2})?$/.test(t)) throw new Error('挂号费请填写金额（元），最多两位小数');
  return Math.round(Number(t) * 100);
}

/** Buildings as lines "代码 名称 楼层 房间,房间" (one line per floor) and back. */
function buildingsText(buildings) {
  return (buildings || []).flatMap((b) => b.floors.length
    ? b.floors.map((f) => `${b.code} ${b.name} ${f.level} ${f.rooms.join(',')}`)
    : [`${b.code} ${b.name}`]).join('\n');
}

function parseBuildings(text) {
  const out = [];
  text.split('\n').map((l) => l.trim()).filter(Boolean).forEach((line, i) => {
    const [code, name, level, rooms] = line.split(/\s+/);
    if (!code || !name || (level !== undefined && !/^-?\d+$/.test(level))) {
      throw new Error(`楼宇第${i + 1}行应为"代码 名称 楼层 房间,房间"`);
    }
    let b = out.find((x) => x.code === code);
    if (!b) out.push(b = { code, name, floors: [] });
    if (level !== undefined) b.floors.push({ level: Number(level), rooms: (rooms || '').split(/[,，、]/).filter(Boolean) });
  });
  return out;
}

function hospitalForm(hosp, reload) {
  const x = hosp || {};
  const intro = h('textarea', { name: 'introduction', rows: '3' });
  intro.value = x.introduction || '';
  const buildings = h('textarea', { name: 'buildings', rows: '4', placeholder: 'A 门诊楼 1 101,102' });
  buildings.value = buildingsText(x.buildings);
  return form('医院信息', [
    field('医院名称', h('input', { name: 'hname', required: true, maxlength: '64', value: x.name || '' })),
    field('等级', h('input', { name: 'level', value: x.level || '' })),
    field('地址', h('input', { name: 'address', value: x.address || '' })),
    field('电话', h('input', { name: 'phone', value: x.phone || '' })),
    field('服务时间', h('input', { name: 'hours', value: x.service_hours || '' })),
    field('纬度', h('input', { name: 'lat', type: 'number', step: 'any', value: x.latitude ?? '' })),
    field('经度', h('input', { name: 'lng', type: 'number', step: 'any', value: x.longitude ?? '' })),
    field('简介', intro),
    field('楼宇、楼层与房间（每行：代码 名称 楼层 房间,房间）', buildings),
  ], '保存医院信息', (f) => api('PUT', '/api/v1/admin/hospital', {
    name: f.hname.value, level: f.level.value, introduction: f.introduction.value, address: f.address.value,
    phone: f.phone.value, service_hours: f.hours.value, latitude: Number(f.lat.value || 0),
    longitude: Number(f.lng.value || 0), buildings: parseBuildings(f.buildings.value),
  }), reload, 'hospital-form', {
    name: '医院名称须为 1 至 64 个字，且不能含控制字符',
    introduction: '简介最多 4000 个字',
    latitude: '地图位置有误：纬度须在 -90 至 90 之间，经度须在 -180 至 180 之间',
  });
}

/** Maps the upload's refusals to what staff read. */
async function upload(id, file) {
  if (!file) throw new Error('请先选择照片文件');
  try {
    return await api('PUT', `/api/v1/admin/doctors/${id}/photo`, file);
  } catch (x) {
    if (x instanceof ApiError && x.code === 'unsupported_media_type') throw new Error('只接受 JPEG、PNG 或 WebP 图片');
    if (x instanceof ApiError && x.code === 'payload_too_large') throw new Error('照片不能超过 2 MB');
    throw x;
  }
}

function doctorEditor(d, depts, reload) {
  const dept = h('select', { name: 'department' },
    depts.map((x) => h('option', { value: x.id }, '　'.repeat(x.depth) + x.name)));
  dept.value = d.department_id;
  const title = h('select', { name: 'title' }, TITLES.map(([v, l]) => h('option', { value: v }, l)));
  title.value = d.title;
  const intro = h('textarea', { name: 'introduction', rows: '3' });
  intro.value = d.introduction || '';
  const edit = form(`编辑医生：${d.name}`, [
    field('姓名', h('input', { name: 'doctor_name', required: true, value: d.name })),
    field('科室', dept),
    field('职称', title),
    field('专长（逗号分隔）', h('input', { name: 'specialties', value: (d.specialties || []).join('，') })),
    field('挂号费（元，留空按职称默认）',
      h('input', { name: 'fee', inputmode: 'decimal', value: d.own_fee == null ? '' : (d.own_fee / 100).toFixed(2) })),
    field('简介', intro),
  ], '保存修改', (f) => api('PATCH', `/api/v1/admin/doctors/${d.id}`, {
    name: f.doctor_name.value, department_id: f.department.value, title: f.title.value,
    specialties: f.specialties.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean),
    introduction: f.introduction.value, own_fee: fenOf(f.fee.value),
  }), () => reload(d.id), 'edit-doctor', DOCTOR_REFUSALS);

  const photo = form('医生照片', [
    d.photo_url ? h('img', { class: 'photo', src: d.photo_url, alt: d.name + '的照片' }) : h('p', { class: 'muted' }, '还没有照片'),
    field('JPEG、PNG 或 WebP，不超过 2 MB', h('input', { name: 'photo', type: 'file', accept: 'image/jpeg,image/png,image/webp' })),
  ], d.photo_url ? '更换照片' : '上传照片', (f) => upload(d.id, f.photo.files[0]), () => reload(d.id), 'doctor-photo');
  if (d.photo_url) {
    photo.appendChild(h('button', { type: 'button', class: 'secondary', id: 'remove-photo', onclick: async () => {
      await api('DELETE', `/api/v1/admin/doctors/${d.id}/photo`);
      reload(d.id);
    } }, '删除照片'));
  }
  return h('div', {}, edit, photo, h('button', { class: 'secondary', onclick: () => reload() }, '新增医生'));
}

export async function cataloguePage(main, me, selected) {
  const [all, hosp] = await Promise.all([
    api('GET', '/api/v1/admin/catalogue'),
    api('GET', '/api/v1/hospital').catch((x) => { if (x instanceof ApiError && x.status === 404) return null; throw x; }),
  ]);
  const depts = flatten(all.departments);
  const closed = new Set(all.closed);
  const reload = (id) => cataloguePage(main, me, id);
  const deptOptions = (withNone) => [withNone ? h('option', { value: '' }, '（顶级科室）') : null,
    ...depts.map((d) => h('option', { value: d.id }, '　'.repeat(d.depth) + d.name + (closed.has(d.id) ? '（停用）' : '')))];
  const state = (d) => !d.enabled ? h('span', { class: 'bad' }, '已停用')
    : closed.has(d.id) ? h('span', { class: 'bad' }, '上级已停用') : h('span', { class: 'ok' }, '启用');

  const deptTable = table([
    ['科室', (d) => h('span', { class: 'depth' + Math.min(d.depth, 3) }, d.name)],
    ['位置', (d) => d.location],
    ['排序', (d) => String(d.sort)],
    ['状态', state],
    ['操作', (d) => h('button', { class: 'secondary', 'data-toggle-department': d.id, onclick: async () => {
      const off = d.enabled;
      if (off && !confirm(`停用「${d.name}」？患者将看不到该科室及其下级科室、医生和号源，也不能新预约；已有预约保留。`)) return;
      await api('PATCH', `/api/v1/admin/departments/${d.id}`, { enabled: !off });
      reload(selected);
    } }, d.enabled ? '停用' : '启用')],
  ], depts, '还没有科室');
  const doctorTable = table([
    ['医生', (d) => h('a', { href: '#catalogue', 'data-doctor': d.id, onclick: (e) => { e.preventDefault(); reload(d.id); } },
      d.photo_url ? h('img', { class: 'thumb', src: d.photo_url, alt: '' }) : null, d.name)],
    ['职称', (d) => titleLabel[d.title] || d.title],
    ['科室', (d) => [d.department_name || '', closed.has(d.department_id) ? h('span', { class: 'bad' }, '（停用）') : null]],
    ['挂号费', (d) => yuan(d.fee) + (d.own_fee == null ? '' : '（自定）')],
    ['专长', (d) => (d.specialties || []).join('、')],
  ], all.doctors, '还没有医生');

  const newDept = form('新增科室', [
    field('名称', h('input', { name: 'dname', required: true })),
    field('上级科室', h('select', { name: 'parent' }, deptOptions(true))),
    field('位置', h('input', { name: 'location' })),
    field('排序', h('input', { name: 'sort', type: 'number', value: '0' })),
  ], '创建科室', (f) => api('POST', '/api/v1/admin/departments', {
    name: f.dname.value, parent_id: f.parent.value || null, location: f.location.value, sort: Number(f.sort.value || 0),
  }), () => reload(selected), 'new-department', {
    name: '名称须为 1 至 32 个字，且不能含控制字符',
    location: '位置最多 64 个字',
    parent_id: '上级科室不存在、是它自己的下级，或层级过深：请换一个上级科室',
  });
  const newDoctor = form('新增医生', [
    field('姓名', h('input', { name: 'doctor_name', required: true })),
    field('科室', h('select', { name: 'department' }, deptOptions(false))),
    field('职称', h('select', { name: 'title' }, TITLES.map(([v, l]) => h('option', { value: v }, l)))),
    field('专长（逗号分隔）', h('input', { name: 'specialties' })),
    field('挂号费（元，留空按职称默认）', h('input', { name: 'fee', inputmode: 'decimal' })),
    field('医生编码（导入排班模板用，可不填）', h('input', { name: 'code', maxlength: '32' })),
  ], '创建医生', (f) => api('POST', '/api/v1/admin/doctors', {
    name: f.doctor_name.value, department_id: f.department.value, title: f.title.value,
    code: f.code.value.trim() || undefined, own_fee: fenOf(f.fee.value) ?? undefined,
    specialties: f.specialties.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean),
  }), (d) => reload(d.id), 'new-doctor', DOCTOR_REFUSALS);

  const editing = all.doctors.find((d) => d.id === selected);
  mount(main, h('h2', {}, '科室与医生'),
    h('div', { class: 'two' }, hospitalForm(hosp, () => reload(selected)),
      h('div', { class: 'card' }, h('h3', {}, '患者看到的医院信息'), hosp
        ? h('div', {}, h('p', {}, `${hosp.name}（${hosp.level}）`), h('p', { class: 'muted' }, `${hosp.address}　${hosp.phone}　${hosp.service_hours}`),
          h('p', { class: 'muted' }, `地图位置：${hosp.latitude}, ${hosp.longitude}`),
          h('p', { class: 'muted' }, `楼宇：${(hosp.buildings || []).map((b) => b.name).join('、') || '无'}`))
        : h('p', { class: 'empty' }, '还没有填写医院信息'))),
    h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '科室'), deptTable), newDept),
    h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '医生'), doctorTable),
      editing ? doctorEditor(editing, depts, reload) : newDoctor));
}
