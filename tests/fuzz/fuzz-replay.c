/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Replays a fuzz corpus through LLVMFuzzerTestOneInput so that the corpus
 * runs as an ordinary test (suite fuzz) without libFuzzer. Arguments are
 * files or directories. */
#include <glib.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_path(const char *path)
{
	int n = 0;
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
		const char *entry;
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
		if (dir == NULL)
			return 0;
		while ((entry = g_dir_read_name(dir)) != NULL)
			g_ptr_array_add(names, g_build_filename(path, entry, NULL));
		for (guint i = 0; i < names->len; i++)
			n += replay_path(g_ptr_array_index(names, i));
		return n;
	}
	{
		g_autofree char *data = NULL;
		gsize len = 0;
		g_autoptr(GError) error = NULL;
		if (!g_file_get_contents(path, &data, &len, &error)) {
			g_printerr("%s\n", error->message);
			return 0;
		}
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
	}
	return 1;
}

int
main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++)
		n += replay_path(argv[i]);
	g_print("replayed %d inputs\n", n);
	return n > 0 ? 0 : 77;
}
