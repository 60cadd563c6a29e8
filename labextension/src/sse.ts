/**
 * Incremental parser for server-sent events read from a `fetch` body.
 *
 * The sidebar reads its push channel with `fetch` (through Jupyter's
 * ServerConnection, so the usual token and XSRF handling apply) rather than
 * `EventSource`, which cannot send the Authorization header.
 */

export interface IServerEvent {
  event: string;
  data: string;
}

/**
 * Parse every complete event in `buffer`; return them and the unparsed rest.
 * Comments (`: keepalive`) are skipped; `event` defaults to "message".
 */
export function parseEvents(buffer: string): {
  events: IServerEvent[];
  rest: string;
} {
  const normalized = buffer.replace(/\r\n?/g, '\n');
  const blocks = normalized.split('\n\n');
  const rest = blocks.pop() ?? '';
  const events: IServerEvent[] = [];
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) {
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) {
        value = value.slice(1);
      }
      if (field === 'event') {
        event = value;
      } else if (field === 'data') {
        data.push(value);
      }
    }
    if (data.length > 0) {
      events.push({ event, data: data.join('\n') });
    }
  }
  return { events, rest };
}
