/** Test root file systems are built by the same code as the built-in busybox image. */
export * from "../images/busybox-rootfs.js";
