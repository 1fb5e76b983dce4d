// The staff login form shared by the consoles: on success it calls `onIn()`; errors show in
// Chinese (`messageOf`).
import { login, messageOf } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';

export function loginView(app, title, onIn, message) {
  const user = h('input', { name: 'username', placeholder: '工号 / 用户名', autocomplete: 'username' });
  const pass = h('input', { name: 'password', type: 'password', placeholder: '密码', autocomplete: 'current-password' });
  const err = h('div', { class: 'error', role: 'alert' }, message || '');
  const form = h('form', { class: 'login', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      await login(user.value.trim(), pass.value);
      onIn();
    } catch (x) {
      err.textContent = messageOf(x);
    }
  } }, h('h1', {}, title), user, pass, h('button', { type: 'submit' }, '登录'), err);
  mount(app, form);
  user.focus();
}
