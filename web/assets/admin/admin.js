// The back office: login, then a page per area the caller's permissions open (staff, roles,
// patients, catalogue, schedules, import, announcements, articles and FAQ, analytics, audit). The route is the URL's hash (`#staff`), so a reload
// stays on the page. Every string from the server is rendered as text (`dom.js`).
import { api, token, messageOf, ApiError, logout } from '/static/common/api.js';
import { h, mount, loadClock } from '/static/common/dom.js';
import { loginView } from '/static/common/login.js';
import { staffPage } from '/admin/pages/staff.js';
import { rolesPage } from '/admin/pages/roles.js';
import { patientsPage } from '/admin/pages/patients.js';
import { cataloguePage } from '/admin/pages/catalogue.js';
import { schedulesPage } from '/admin/pages/schedules.js';
import { auditPage } from '/admin/pages/audit.js';
import { importPage } from '/admin/pages/import.js';
import { announcementsPage } from '/admin/pages/announcements.js';
import { contentPage } from '/admin/pages/content.js';
import { analyticsPage } from '/admin/pages/analytics.js';
import { policiesPage } from '/admin/pages/policies.js';
import { staffNews, watch } from '/admin/staff_socket.js';
import { newsBar } from '/static/common/news.js';

const app = document.getElementById('app');
const TITLE = '医院管理后台';

/**
 * A refusal no page showed itself (a table button's action, say: 停用, 撤回, 删除) is said in a
 * bar under the top bar, in the words `messageOf` has for it, until closed or the next page.
 */
const problem = h('div', { class: 'problem', id: 'problem', role: 'alert' });
function showProblem(x) {
  if (x instanceof ApiError && x.status === 401) { start(); return; }
  mount(problem, h('span', { class: 'text' }, messageOf(x)),
    h('button', { class: 'secondary', type: 'button', onclick: () => mount(problem) }, '关闭'));
}
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  showProblem(e.reason);
});

/** The pages, in menu order, with the permission each needs. */
const PAGES = [
  { id: 'staff', label: '员工', needs: 'staff.read', render: staffPage },
  { id: 'roles', label: '角色与权限', needs: 'roles.read', render: rolesPage },
  { id: 'patients', label: '患者账号', needs: 'patients.read', render: patientsPage },
  { id: 'catalogue', label: '科室与医生', needs: 'catalog.write', render: cataloguePage },
  { id: 'schedules', label: '排班', needs: 'schedule.write', render: schedulesPage },
  { id: 'import', label: '批量导入', needs: 'catalog.import', render: importPage },
  { id: 'announcements', label: '公告', needs: 'content.write', render: announcementsPage },
  { id: 'content', label: '资讯与常见问题', needs: 'content.write', render: contentPage },
  { id: 'policies', label: '隐私政策与用户协议', needs: 'content.write', render: policiesPage },
  { id: 'analytics', label: '统计分析', needs: 'analytics.read', render: analyticsPage },
  { id: 'audit', label: '审计日志', needs: 'audit.read', render: auditPage },
];

async function start() {
  if (!token()) return loginView(app, TITLE, start);
  let me;
  try {
    me = await api('GET', '/api/v1/staff/me');
  } catch (x) {
    return loginView(app, TITLE, start, x instanceof ApiError && x.status !== 401 ? messageOf(x) : '');
  }
  const pages = PAGES.filter((p) => me.permissions.includes(p.needs));
  const nav = h('nav', { class: 'menu' });
  const main = h('main', { class: 'page' });
  const news = newsBar();
  mount(app,
    h('header', { class: 'topbar' }, h('span', { class: 'title' }, TITLE), h('span', { class: 'spacer' }),
      h('span', { class: 'who' }, me.name || me.username),
      h('button', { class: 'secondary', id: 'logout', onclick: async () => { await logout(); start(); } }, '退出')),
    news, problem,
    h('div', { class: 'shell' }, nav, main));
  staffNews(news);

  const show = async () => {
    const id = location.hash.slice(1) || (pages[0] && pages[0].id);
    const page = pages.find((p) => p.id === id) || pages[0];
    mount(nav, pages.map((p) => h('a', { href: '#' + p.id, class: p === page ? 'active' : '', 'data-page': p.id }, p.label)));
    if (!page) return mount(main, h('p', { class: 'empty' }, '您的角色没有可用的管理页面。'));
    mount(main, h('p', { class: 'muted' }, '加载中…'));
    mount(problem);
    watch([]); // what the last page watched stops; a page that watches says so itself
    try {
      await page.render(main, me);
    } catch (x) {
      if (x instanceof ApiError && x.status === 401) return start();
      mount(main, h('div', { class: 'error', role: 'alert' }, messageOf(x)));
    }
  };
  window.onhashchange = show;
  await show();
}

// The hospital's zone first: every time and "today" on the pages is the hospital's.
loadClock().then(start);
