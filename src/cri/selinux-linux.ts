/**
 * Whether this host runs SELinux: the kernel exposes selinuxfs (with its `enforce` file) only
 * when SELinux is enabled, whatever its mode. Read once: SELinux cannot be turned on or off
 * without a reboot.
 */
import { existsSync } from "node:fs";

let enabled: boolean | undefined;

export function selinuxEnabled(): boolean {
  enabled ??= existsSync("/sys/fs/selinux/enforce");
  return enabled;
}
