// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for the distribution's nitro_enclaves driver, for
 * ne_kvm_distro_test.sh only: a PCI driver of that name that binds the NE
 * device (1d0f:e4c1) and does nothing with it.  Debian's kernel does not
 * build the real one.
 */
#include <linux/module.h>
#include <linux/pci.h>

static int fake_ne_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	dev_info(&pdev->dev, "bound by the stand-in nitro_enclaves driver\n");
	return 0;
}

static void fake_ne_remove(struct pci_dev *pdev)
{
}

static const struct pci_device_id fake_ne_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_AMAZON, 0xe4c1) },
	{ }
};
MODULE_DEVICE_TABLE(pci, fake_ne_ids);

static struct pci_driver fake_ne_driver = {
	.name = "nitro_enclaves",
	.id_table = fake_ne_ids,
	.probe = fake_ne_probe,
	.remove = fake_ne_remove,
};
module_pci_driver(fake_ne_driver);

MODULE_DESCRIPTION("Stand-in for the nitro_enclaves driver (tests only)");
MODULE_LICENSE("GPL");
