// The private dockerd lives in bench/dockerd.ts, shared by the tests and `npm run bench`.
export { dockerdUnavailable, startDockerd, type Dockerd, type DockerResult } from '../../bench/dockerd.js';
