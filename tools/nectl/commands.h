/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_COMMANDS_H
#define NECTL_COMMANDS_H

int cmd_describe_enclaves(int argc, char **argv);
int cmd_terminate_enclave(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_verify_attestation(int argc, char **argv);
int cmd_pcr(int argc, char **argv);

#endif
