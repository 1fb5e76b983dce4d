// The REST API as the staff pages use it: the bearer token (kept for this tab only), JSON in and
// out, and the platform's one error shape turned into an ApiError with its stable code.

const TOKEN_KEY = 'hospital.staff.token';

/** What staff read for the API's stable error codes (the server's message, in English, is the fallback). */
const MESSAGES = {
  invalid_credentials: '用户名或密码错误',
  code_locked: '尝试次数过多，请稍后再试',
  rate_limited: '操作太频繁，请稍后再试',
  unauthenticated: '请先登录',
  invalid_token: '登录已失效，请重新登录',
  forbidden: '没有权限执行此操作',
  not_found: '没有找到',
  unavailable: '服务繁忙，请稍后重试',
  internal: '服务器出错了，请稍后重试',
  network: '网络连接失败，请稍后重试',
  // Refusals whose meaning is whole without the server's detail.
  username_taken: '该用户名已被使用，请换一个',
  builtin_role: '内置角色不能删除',
  admin_role_fixed: '管理员角色拥有全部权限，只能修改名称',
  self_deactivation: '不能停用自己的账号',
  version_conflict: '内容已被他人修改，请刷新页面后再保存',
  edit_conflict: '内容已被他人修改，请重试',
  already_published: '公告已发布或已撤回，不能再撤回',
  import_conflict: '另一次导入刚刚完成，请重新导入',
  account_disabled: '账号已停用，请联系医院',
  conversation_state: '该会话已结束',
  already_handled: '该差异已处理',
  malformed_json: '提交的内容格式有误',
  payload_too_large: '文件或内容太大',
  unsupported_media_type: '不支持的文件类型',
  request_timeout: '请求超时，请重试',
};

/** The message to show for an error. */
export function messageOf(err) {
  if (err instanceof ApiError) return MESSAGES[err.code] || err.message;
  return String(err && err.message ? err.message : err);
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Calls the API; resolves to the parsed JSON (or null for 204), rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let payload;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, 'network', '网络连接失败，请稍后重试');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  if (!res.ok) {
    if (res.status === 401) setToken(null);
    throw errorOf(res, text);
  }
  try { return text ? JSON.parse(text) : null; } catch { return null; /* not JSON */ }
}

/** The ApiError of a failed answer whose body is `text`: the API's error shape, else the status. */
export function errorOf(res, text) {
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  const err = data && data.error ? data.error : { code: 'http_' + res.status, message: text || res.statusText };
  return new ApiError(res.status, err.code, err.message, err.field);
}

/** Staff login; keeps the token. */
export async function login(username, password) {
  const r = await api('POST', '/api/v1/auth/staff/login', { username, password });
  setToken(r.token);
  return r;
}

export async function logout() {
  try { await api('POST', '/api/v1/auth/logout'); } finally { setToken(null); }
}
