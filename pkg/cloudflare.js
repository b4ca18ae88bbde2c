// Runs `section` and `vote` on Cloudflare's durable engines, one LLM call per unit of
// durable work. A Workflow runs one step per call (runSectionWorkflow,
// runVoteWorkflow). Queues carry one message per call, and a Durable Object per job
// records each outcome once (JobObject, startJob, consumeQueueBatch). Both drive the
// core's durable-engine API (planSection, runSubtask, finishSection, planVote,
// runSample, evaluateVote, finishVote), so merges and tallies are the same code as in
// an in-process run.
//
// Workers only: the Durable Object base class comes from `cloudflare:workers`.
export {PLAN_LIMITS, checkLimits, resolveLimits} from './cloudflare/limits.js';
export {runSectionWorkflow, runVoteWorkflow} from './cloudflare/workflows.js';
export {consumeQueueBatch, sendInBatches, startJob} from './cloudflare/queues.js';
export {JobObject} from './cloudflare/job-object.js';
