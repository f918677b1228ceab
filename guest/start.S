/*
 * start.S - multiboot (v1) header and entry of the smig test guest.
 * QEMU's -kernel loader enters here in 32-bit protected mode, paging off,
 * with EAX = multiboot magic and EBX = the multiboot information.
 */
	.set MB_MAGIC, 0x1BADB002
	.set MB_FLAGS, 0x00000003	/* page-align modules, provide memory info */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .bss
	.align 16
stack_bottom:
	.skip 65536
stack_top:

	.section .text
	.global _start
_start:
	cli
	mov $stack_top, %esp
	push %ebx
	push %eax
	call guest_main
1:	hlt
	jmp 1b
	.section .note.GNU-stack, "", @progbits
