/* A map from (device, inode) to a path: hard links met while walking a tree. */
#include "base.h"

static size_t
inode_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
	return (size_t)(h ^ (h >> 29));
}

/* The slot of (dev, ino): its entry, or the empty slot where it would go (cap a power of
 * 2, never full). */
static struct kiln_inode_ent *
inode_slot(struct kiln_inode_ent *v, size_t cap, dev_t dev, ino_t ino)
{
	size_t mask = cap - 1;
	for (size_t i = inode_hash(dev, ino) & mask;; i = (i + 1) & mask)
		if (!v[i].path || (v[i].dev == dev && v[i].ino == ino))
			return &v[i];
}

const char *
kiln_inode_map_get(const struct kiln_inode_map *m, dev_t dev, ino_t ino)
{
	return m->cap ? inode_slot(m->v, m->cap, dev, ino)->path : NULL;
}

void
kiln_inode_map_set(struct kiln_inode_map *m, dev_t dev, ino_t ino, const char *path)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct kiln_inode_ent *v = kiln_xcalloc(cap, sizeof(*v));
		for (size_t i = 0; i < m->cap; i++)
			if (m->v[i].path)
				*inode_slot(v, cap, m->v[i].dev, m->v[i].ino) = m->v[i];
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	struct kiln_inode_ent *e = inode_slot(m->v, m->cap, dev, ino);
	if (!e->path)
		m->n++;
	free(e->path);
	*e = (struct kiln_inode_ent){.dev = dev, .ino = ino, .path = kiln_xstrdup(path)};
}

void
kiln_inode_map_clear(struct kiln_inode_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->v[i].path);
	free(m->v);
	*m = (struct kiln_inode_map){0};
}
