export { EventExchange, topicMatches } from "./exchange.js";
export type { Envelope, EventExchangeOptions, EventFilter, OnOptions, SubscribeOptions, Subscription } from "./exchange.js";
export {
  decodeForwardRequest,
  EVENTS_SERVICE,
  FORWARD_METHOD,
  registerEventsService,
} from "./forward-service.js";
export type { ForwardContext, TtrpcRegistrar } from "./forward-service.js";
export { decodeTaskEvent, TASK_TOPIC_PREFIX, TaskTopic } from "./task-events.js";
export type { MountInfo, TaskEvent, TaskEventKind } from "./task-events.js";
