// Images in a conversation (CS-1): a thumbnail of each image message by its signed link (made by
// the server when the message was read or pushed; short-lived, so an expired one is fetched
// again), and the agent's 发送图片 button. Nothing here parses HTML: the link only ever becomes an
// attribute, and only when it is one of ours (`/api/v1/files/...`).
import { api, messageOf } from '/static/common/api.js';
import { h } from '/static/common/dom.js';

const OURS = '/api/v1/files/';

/** Whether a link may be shown: a path of the files route, nothing else (no javascript:, no other host). */
function ours(url) {
  return typeof url === 'string' && url.startsWith(OURS) && !url.includes('\\');
}

/** A fresh link for an image message, from the history (links are made at read time). */
async function freshLink(m) {
  const page = await api('GET', `/api/v1/chat/agent/conversations/${m.conversation_id}/messages?after=${m.seq - 1}&limit=1`);
  const again = page.messages.find((x) => x.seq === m.seq);
  return again && again.image_link ? again.image_link : null;
}

/** The body of an image message: a thumbnail opening the full image; refreshed once if its link expired. */
export function imageBody(m) {
  const link = m.image_link && ours(m.image_link.url) ? m.image_link.url : null;
  if (!link) return h('div', { class: 'text' }, '[图片]');
  const img = h('img', { class: 'thumb', src: link, alt: '图片', loading: 'lazy' });
  const a = h('a', { class: 'image', href: link, target: '_blank', rel: 'noopener noreferrer' }, img);
  let retried = false;
  img.addEventListener('error', async () => {
    if (retried) return;
    retried = true;
    try {
      const fresh = await freshLink(m);
      if (fresh && ours(fresh.url)) {
        m.image_link = fresh;
        img.src = fresh.url;
        a.href = fresh.url;
      }
    } catch { /* shown as broken; a reload fetches again */ }
  });
  return a;
}

/** The 发送图片 button of a conversation the agent serves; `onSent(message)` once it is durable. */
export function imagePicker(conversationId, onSent, showError) {
  const input = h('input', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', class: 'file', hidden: true });
  const button = h('button', { class: 'secondary send-image', type: 'button', onclick: () => input.click() }, '发送图片');
  input.addEventListener('change', async () => {
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    button.disabled = true;
    try {
      // The bytes go as they are; the server judges them by their content, not the name.
      onSent(await api('POST', `/api/v1/chat/agent/conversations/${conversationId}/images`, file));
    } catch (x) {
      showError(messageOf(x));
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'picker' }, input, button);
}
