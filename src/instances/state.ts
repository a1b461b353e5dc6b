// The observed state of a container group as ACI reports it (instanceView, provisioningState), plus the
// runtime handles the reconciler needs to find its containers again after a restart.
import type { Sandbox } from '../runtime/runtime.js';
import type { RestartPolicy } from './spec.js';
import { backoffDelay as exponentialDelay } from '../lib/backoff.js';

export type ProvisioningState = 'Pending' | 'Creating' | 'Succeeded' | 'Failed';
export type GroupRunState = 'Pending' | 'Running' | 'Stopped' | 'Succeeded' | 'Failed';

/** ACI's Event, in the field order the SDK serializes it (the order `-o table` shows). */
export interface AciEvent {
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  name: string;
  message: string;
  type: 'Normal' | 'Warning';
}

export interface ContainerState {
  state: 'Waiting' | 'Running' | 'Terminated';
  startTime?: string;
  exitCode?: number;
  finishTime?: string;
  detailStatus: string;
}

export interface ContainerStatus {
  restartCount: number;
  currentState?: ContainerState;
  previousState?: ContainerState;
  events: AciEvent[];
  /** Where the runtime appends the container's output (kept until the group is deleted). */
  logPath?: string;
}

export interface GroupState {
  provisioningState: ProvisioningState;
  state: GroupRunState;
  events: AciEvent[];
  /** Desired: the group was stopped (POST stop) and must not run until started. */
  stopped: boolean;
  sandbox?: Sandbox;
  containers: Record<string, ContainerStatus>;
}

export const MAX_EVENTS = 50;

/** ACI's timestamps: second precision, `Z`. */
export function aciTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Records an event, folding a repeat of the last event with the same name and message into its count. */
export function recordEvent(events: AciEvent[], name: string, message: string, type: AciEvent['type'], at: Date = new Date()): AciEvent {
  const ts = aciTime(at);
  const same = events.find((e) => e.name === name && e.message === message && e.type === type);
  if (same) {
    same.count += 1;
    same.lastTimestamp = ts;
    // Keep the list ordered by last occurrence, as `az container attach` sorts it.
    events.splice(events.indexOf(same), 1);
    events.push(same);
    return same;
  }
  const e: AciEvent = { count: 1, firstTimestamp: ts, lastTimestamp: ts, name, message, type };
  events.push(e);
  if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
  return e;
}

export function initialState(containerNames: string[]): GroupState {
  return {
    provisioningState: 'Pending', state: 'Pending', events: [], stopped: false,
    containers: Object.fromEntries(containerNames.map((n) => [n, { restartCount: 0, events: [] }])),
  };
}

/** Whether a container that exited with `exitCode` is restarted under `policy`. */
export function shouldRestart(policy: RestartPolicy, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/** The group's instanceView.state from its containers (container-state.md's table). */
export function groupRunState(s: GroupState, policy: RestartPolicy): GroupRunState {
  if (s.stopped) return 'Stopped';
  const cs = Object.values(s.containers).map((c) => c.currentState);
  if (cs.some((c) => c?.state === 'Running')) return 'Running';
  if (cs.length > 0 && cs.every((c) => c?.state === 'Terminated')) {
    if (policy === 'Always') return 'Running';
    return cs.some((c) => (c!.exitCode ?? 0) !== 0) && policy === 'Never' ? 'Failed' : 'Succeeded';
  }
  return s.provisioningState === 'Succeeded' && cs.some((c) => c?.state === 'Waiting') ? 'Running' : 'Pending';
}

/** Back-off before restart number `n` (1-based): 10 s, 20 s, 40 s, ... capped at 5 minutes (ACI's). */
export function backoffDelay(n: number, baseMs = 10_000, maxMs = 300_000): number {
  return exponentialDelay(n, baseMs, maxMs);
}
