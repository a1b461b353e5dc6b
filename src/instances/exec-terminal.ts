// A tiny terminal line discipline for exec sessions of clients that expect a TTY. ACI runs an exec'd
// command on a terminal; `az container exec` puts the local terminal in raw mode and sends keystrokes
// one by one (Enter is "\r", Backspace is DEL), relying on the remote terminal to echo them, to turn
// "\r" into a newline, to edit the line and to read ^D as end of input. Berth's runc exec has no
// terminal (runc needs a console socket to pass the pty over SCM_RIGHTS), so these sessions get the
// terminal's canonical mode emulated here: ECHO, ICRNL, ICANON (erase, kill, EOF) and ONLCR on output.
// The process itself sees pipes, not a terminal (no job control, no prompt from a shell).

/** The websocket subprotocol of exec sessions without the terminal: bytes as they are (Berth's CLI). */
export const RAW_PROTOCOL = 'berth-exec-raw';

export interface TerminalInputResult {
  /** Bytes for the process's stdin (whole lines, or a partial line flushed by ^D). */
  data: string;
  /** What the terminal echoes back to the client. */
  echo: string;
  /** ^D on an empty line: the process's stdin ends. */
  eof: boolean;
  /** ^C: the user wants the command stopped. */
  interrupt: boolean;
}

const ERASE = new Set(['\x7f', '\b']);

export class TerminalInput {
  private line: string[] = [];

  /** Feeds keystrokes (any number of characters) through the line discipline. */
  input(text: string): TerminalInputResult {
    const r: TerminalInputResult = { data: '', echo: '', eof: false, interrupt: false };
    for (const ch of text) {
      if (r.eof || r.interrupt) break;
      if (ch === '\r' || ch === '\n') {
        r.data += this.line.join('') + '\n';
        r.echo += '\r\n';
        this.line = [];
      } else if (ERASE.has(ch)) {
        if (this.line.pop() !== undefined) r.echo += '\b \b';
      } else if (ch === '\x15') { // ^U: kill the line
        r.echo += '\b \b'.repeat(this.line.length);
        this.line = [];
      } else if (ch === '\x04') { // ^D: flush the line; on an empty line, end of input
        if (this.line.length === 0) r.eof = true;
        r.data += this.line.join('');
        this.line = [];
      } else if (ch === '\x03') { // ^C
        r.echo += '^C\r\n';
        this.line = [];
        r.interrupt = true;
      } else {
        this.line.push(ch);
        r.echo += ch;
      }
    }
    return r;
  }
}

/** The terminal's output translation (ONLCR): every newline becomes CR LF. */
export function terminalOutput(text: string): string {
  return text.replace(/\n/g, '\r\n');
}
