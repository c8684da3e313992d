#!/usr/bin/env node
/**
 * skiff — command-line client. CRI verbs with crictl's names and habits (`pods`, `ps`, `runp`,
 * `create`, `logs`, …) against the CRI socket; `skiff task …` drives skiffd's low-level debug API.
 */
import { Command } from "commander";
import { defaultConfig } from "../config.js";
import { SkiffError } from "../errors.js";
import { registerDoctor } from "../cli/doctor.js";
import { CliContext } from "../cli/context.js";
import { registerPodVerbs } from "../cli/cmd-pods.js";
import { registerContainerVerbs } from "../cli/cmd-containers.js";
import { registerRunVerbs } from "../cli/cmd-run.js";
import { registerImageVerbs } from "../cli/cmd-images.js";
import { registerInfoVerbs } from "../cli/cmd-info.js";
import { registerTaskVerbs } from "../cli/cmd-task.js";
import { registerStreamVerbs } from "../cli/cmd-stream.js";
import { DEFAULT_CLI_CONFIG } from "../cli/settings.js";

const program = new Command()
  .name("skiff")
  .description("skiff container runtime client (CRI verbs like crictl's; `task` for the debug API)")
  // Global flags go before the verb (as with crictl), so `exec ID sh -c …` passes its flags through.
  .enablePositionalOptions()
  .option("-r, --runtime-endpoint <endpoint>", `CRI endpoint (env CONTAINER_RUNTIME_ENDPOINT; default unix://${defaultConfig().socket})`)
  .option("-i, --image-endpoint <endpoint>", "image service endpoint (env IMAGE_SERVICE_ENDPOINT; default: the runtime endpoint)")
  .option("--timeout <duration>", "deadline of each CRI call (10s, 2m; default 2m)")
  .option("-c, --config <file>", `CLI config file with crictl.yaml keys (env SKIFF_CLI_CONFIG; default ${DEFAULT_CLI_CONFIG})`)
  .option("-D, --debug", "print stack traces of errors")
  .option("--debug-socket <path>", "skiffd debug socket (task verbs, import, pull progress)", defaultConfig().debugSocket);

const ctx = new CliContext(program);
registerPodVerbs(program, ctx);
registerContainerVerbs(program, ctx);
registerRunVerbs(program, ctx);
registerImageVerbs(program, ctx);
registerInfoVerbs(program, ctx);
registerStreamVerbs(program, ctx);
registerTaskVerbs(program, () => program.opts<{ debugSocket: string }>().debugSocket);
registerDoctor(program);

try {
  await program.parseAsync();
} catch (err) {
  const msg = err instanceof SkiffError ? `${err.message} (${err.code})` : (err as Error).message;
  console.error(`skiff: ${msg}`);
  process.exitCode = process.exitCode || 1;
}
