// 科室与医生: the department tree (order, parent) and the doctors; create and edit them. Changes
// show in the patient app at once.
import { api, h, table, field, form, flatten } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

const TITLES = [
  ['chief_physician', '主任医师'], ['associate_chief_physician', '副主任医师'],
  ['attending_physician', '主治医师'], ['resident_physician', '住院医师'],
];
const titleLabel = Object.fromEntries(TITLES);

export async function cataloguePage(main, me) {
  const [tree, doctors] = await Promise.all([api('GET', '/api/v1/departments'), api('GET', '/api/v1/doctors?limit=100')]);
  const depts = flatten(tree);
  const deptName = Object.fromEntries(depts.map((d) => [d.id, d.name]));
  const reload = () => cataloguePage(main, me);
  const deptOptions = (withNone) => [withNone ? h('option', { value: '' }, '（顶级科室）') : null,
    ...depts.map((d) => h('option', { value: d.id }, '　'.repeat(d.depth) + d.name))];

  const deptTable = table([
    ['科室', (d) => h('span', { class: 'depth' + Math.min(d.depth, 3) }, d.name)],
    ['位置', (d) => d.location],
    ['排序', (d) => String(d.sort)],
  ], depts, '还没有科室');
  const doctorList = Array.isArray(doctors) ? doctors : (doctors.items || doctors.doctors || []);
  const doctorTable = table([
    ['医生', (d) => d.name], ['职称', (d) => titleLabel[d.title] || d.title],
    ['科室', (d) => deptName[d.department_id] || ''], ['专长', (d) => (d.specialties || []).join('、')],
  ], doctorList, '还没有医生');

  const newDept = form('新增科室', [
    field('名称', h('input', { name: 'dname', required: true })),
    field('上级科室', h('select', { name: 'parent' }, deptOptions(true))),
    field('位置', h('input', { name: 'location' })),
    field('排序', h('input', { name: 'sort', type: 'number', value: '0' })),
  ], '创建科室', (f) => api('POST', '/api/v1/admin/departments', {
    name: f.dname.value, parent_id: f.parent.value || null, location: f.location.value, sort: Number(f.sort.value || 0),
  }), reload, 'new-department');
  const newDoctor = form('新增医生', [
    field('姓名', h('input', { name: 'doctor_name', required: true })),
    field('科室', h('select', { name: 'department' }, deptOptions(false))),
    field('职称', h('select', { name: 'title' }, TITLES.map(([v, l]) => h('option', { value: v }, l)))),
    field('专长（逗号分隔）', h('input', { name: 'specialties' })),
    field('医生编码（导入排班模板用，可不填）', h('input', { name: 'code', maxlength: '32' })),
  ], '创建医生', (f) => api('POST', '/api/v1/admin/doctors', {
    name: f.doctor_name.value, department_id: f.department.value, title: f.title.value,
    code: f.code.value.trim() || undefined,
    specialties: f.specialties.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean),
  }), reload, 'new-doctor');

  mount(main, h('h2', {}, '科室与医生'),
    h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '科室'), deptTable), newDept),
    h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '医生'), doctorTable), newDoctor));
}
