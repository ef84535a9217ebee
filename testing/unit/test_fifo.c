/* test_fifo.c — the intrusive FIFO (runtime/fifo.h): order, push to the
 * front, removal anywhere, and a link that is not the first member. */
#include "runtime/fifo.h"
#include "testing/lib/th.h"

typedef struct node {
    int v;
    struct node *link; /* not first: the offset matters */
} node;

static void t_order_and_front(void)
{
    node n[4] = {{0, NULL}, {1, NULL}, {2, NULL}, {3, NULL}};
    sw_fifo f = SW_FIFO_INIT(node, link);
    TH_ASSERT(sw_fifo_pop(&f) == NULL);
    sw_fifo_push(&f, &n[1]);
    sw_fifo_push(&f, &n[2]);
    sw_fifo_push_front(&f, &n[0]);
    sw_fifo_push(&f, &n[3]);
    TH_ASSERT_EQ_INT(sw_fifo_len(&f), 4);
    TH_ASSERT(sw_fifo_peek(&f) == &n[0]);
    for (int i = 0; i < 4; i++) {
        node *x = sw_fifo_pop(&f);
        TH_ASSERT(x && x->v == i && x->link == NULL);
    }
    TH_ASSERT(sw_fifo_pop(&f) == NULL && f.tail == NULL && sw_fifo_len(&f) == 0);
    sw_fifo_push_front(&f, &n[2]); /* front of an empty FIFO is also its tail */
    sw_fifo_push(&f, &n[3]);
    TH_ASSERT(sw_fifo_pop(&f) == &n[2] && sw_fifo_pop(&f) == &n[3]);
}

static void t_remove(void)
{
    node n[3] = {{0, NULL}, {1, NULL}, {2, NULL}};
    sw_fifo f = SW_FIFO_INIT(node, link);
    for (int i = 0; i < 3; i++) sw_fifo_push(&f, &n[i]);
    TH_ASSERT_EQ_INT(sw_fifo_remove(&f, &n[2]), 1); /* the tail */
    sw_fifo_push(&f, &n[2]);
    TH_ASSERT(f.tail == &n[2]);
    TH_ASSERT_EQ_INT(sw_fifo_remove(&f, &n[1]), 1); /* the middle */
    TH_ASSERT_EQ_INT(sw_fifo_remove(&f, &n[1]), 0);
    TH_ASSERT_EQ_INT(sw_fifo_remove(&f, &n[0]), 1); /* the head */
    TH_ASSERT(sw_fifo_peek(&f) == &n[2] && sw_fifo_len(&f) == 1);
    TH_ASSERT(sw_fifo_pop(&f) == &n[2] && f.head == NULL && f.tail == NULL);
}

int main(void)
{
    TH_RUN(t_order_and_front);
    TH_RUN(t_remove);
    return th_done();
}
